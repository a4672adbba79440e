/* Re-emits a parsed JSON value (see json_write.h). Recursion depth is bounded by the reader's
 * depth limit, which every value passed here went through. */
#include "json_write.h"

yajl_gen_status proto_json_write(yajl_gen g, const proto_json_t *v)
{
    yajl_gen_status st = yajl_gen_status_ok;
    switch (v->type) {
    case PROTO_JSON_NULL:
        return yajl_gen_null(g);
    case PROTO_JSON_BOOL:
        return yajl_gen_bool(g, v->u.boolean);
    case PROTO_JSON_NUMBER:
        return yajl_gen_number(g, v->u.number.text.ptr, v->u.number.text.len);
    case PROTO_JSON_STRING:
        return proto_json_write_str(g, v->u.string);
    case PROTO_JSON_ARRAY:
        st = yajl_gen_array_open(g);
        for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.array.count; i++) {
            st = proto_json_write(g, v->u.array.items[i]);
        }
        return st == yajl_gen_status_ok ? yajl_gen_array_close(g) : st;
    case PROTO_JSON_OBJECT:
        st = yajl_gen_map_open(g);
        for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.object.count; i++) {
            st = proto_json_write_str(g, v->u.object.members[i].key);
            if (st == yajl_gen_status_ok) {
                st = proto_json_write(g, v->u.object.members[i].value);
            }
        }
        return st == yajl_gen_status_ok ? yajl_gen_map_close(g) : st;
    }
    return yajl_gen_invalid_string;
}
