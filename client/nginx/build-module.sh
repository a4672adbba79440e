#!/usr/bin/env bash
# Builds ngx_http_jwtauthz_module.so against Debian's nginx-dev tree, the way Debian builds its own
# libnginx-mod-* packages: a private copy of /usr/share/nginx/src configured with Debian's flags
# (conf_flags: --with-compat, so the module's signature matches /usr/sbin/nginx), then
# `make -f objs/Makefile modules`. It never writes into the nginx-dev tree or outside WORK_DIR
# and OUT_SO. CMake (client/nginx/CMakeLists.txt) calls it; by hand:
#   build-module.sh NGINX_SRC WORK_DIR MODULE_DIR LIBJWTAUTHZ_A INCLUDE_DIR OUT_SO
set -euo pipefail

if (($# != 6)); then
    echo "usage: $0 NGINX_SRC WORK_DIR MODULE_DIR LIBJWTAUTHZ_A INCLUDE_DIR OUT_SO" >&2
    exit 2
fi
nginx_src=$1 work=$2 module_dir=$3 lib=$4 inc=$5 out=$6
tree=$work/nginx

# Debian's own compiler and linker flags for nginx (`nginx -V` on bookworm, less the build path
# remapping): the module gets the hardening the server binary has. nginx's configure adds
# -W -Wall -Wpointer-arith -Wno-unused-parameter -Werror to these.
cc_opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time \
-D_FORTIFY_SOURCE=2"
ld_opt="-Wl,-z,relro -Wl,-z,now -fPIC"

if [[ ! -x $tree/configure || $nginx_src/conf_flags -nt $tree/conf_flags ]]; then
    rm -rf "$tree"
    mkdir -p "$work"
    cp -a "$nginx_src" "$tree"
fi

# Configure again only when what configure reads changed: the module's config, the flags, or
# the paths handed to it.
stamp=$tree/objs/jwtauthz-configure.stamp
want="$module_dir|$lib|$inc|$cc_opt|$ld_opt"
if [[ ! -f $tree/objs/Makefile || ! -f $stamp || $module_dir/config -nt $stamp ||
      $(cat "$stamp") != "$want" ]]; then
    (
        cd "$tree"
        # shellcheck source=/dev/null
        source ./conf_flags
        JWTAUTHZ_LIB=$lib JWTAUTHZ_INC=$inc ./configure "${NGX_CONF_FLAGS[@]}" \
            --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
            --add-dynamic-module="$module_dir" >"$work/configure.log" 2>&1
    ) || {
        tail -n 30 "$work/configure.log" >&2
        echo "$0: nginx configure failed; full log: $work/configure.log" >&2
        exit 1
    }
    printf '%s' "$want" >"$stamp"
fi

# objs/Makefile relinks when the module's objects change, not when libjwtauthz.a does: always
# relink (it takes milliseconds).
rm -f "$tree/objs/ngx_http_jwtauthz_module.so"
make -C "$tree" -f objs/Makefile modules >"$work/make.log" 2>&1 || {
    cat "$work/make.log" >&2
    exit 1
}
mkdir -p "$(dirname "$out")"
cp "$tree/objs/ngx_http_jwtauthz_module.so" "$out.tmp"
mv -f "$out.tmp" "$out"
