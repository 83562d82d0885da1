/// Shell scripts that boot systemd as PID 1 in new PID, mount and cgroup namespaces, on an overlay root.
///
/// Never against the host root: systemd-tmpfiles and friends would wipe the host's /tmp. Here / is an
/// overlay whose writes land on a tmpfs, /run, /tmp and /dev are fresh tmpfs mounts, /proc/sys and /sys
/// are read-only, no generator and none of the host's `*.wants` run, and `container=` tells systemd it is
/// in a container. The boot target pulls only journald, sysusers and `sandboxd.socket`.
enum BootScripts {
    /// `outer.sh DIR UNITS DAEMON PRODUCTS`: moves itself into a fresh cgroup, then unshares and runs inner.sh.
    static let outer = #"""
        #!/bin/sh
        set -eu
        D=$1
        CG=/sys/fs/cgroup/unified/$(basename "$D")
        [ -d /sys/fs/cgroup/unified ] || CG=/sys/fs/cgroup/$(basename "$D")
        mkdir "$CG"
        echo "$CG" > "$D/cgroup"
        echo $$ > "$CG/cgroup.procs"
        exec unshare --pid --fork --kill-child=SIGKILL --mount --cgroup --propagation private /bin/sh "$D/inner.sh" "$@"

        """#

    /// `inner.sh DIR UNITS DAEMON PRODUCTS`, PID 1 of the new namespaces until it execs systemd.
    ///
    /// PRODUCTS (the build products: the probe, the example runtime) is bound read-only at its own path
    /// after the fresh /tmp, so the tests work wherever the checkout lives, /tmp included.
    static let inner = #"""
        #!/bin/sh
        set -eu
        D=$1
        UNITS=$2
        DAEMON=$3
        PRODUCTS=$4
        case "$D" in /tmp/sandboxd-*) ;; *) echo "refusing work dir $D" >&2; exit 1 ;; esac
        R=$D/root
        mount --make-rprivate /
        mount -t tmpfs -o mode=0755 tmpfs "$D/layers"
        mkdir "$D/layers/upper" "$D/layers/work"
        mount -t overlay overlay -o "lowerdir=/,upperdir=$D/layers/upper,workdir=$D/layers/work" "$R"
        mountpoint -q "$R"
        mount -t proc proc "$R/proc"
        mount --bind "$R/proc/sys" "$R/proc/sys"
        mount -o remount,bind,ro "$R/proc/sys"
        mount --bind /sys "$R/sys"
        mount -o remount,bind,ro "$R/sys"
        mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
        mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
        for node in null zero full random urandom tty; do
            touch "$R/dev/$node"
            mount --bind "/dev/$node" "$R/dev/$node"
        done
        touch "$R/dev/console"
        mount --bind /dev/null "$R/dev/console"
        mkdir "$R/dev/pts" "$R/dev/shm"
        mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
        ln -s pts/ptmx "$R/dev/ptmx"
        ln -s /proc/self/fd "$R/dev/fd"
        mount -t tmpfs -o mode=0755 tmpfs "$R/run"
        mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
        mkdir -p "$R$PRODUCTS"
        mount --bind "$PRODUCTS" "$R$PRODUCTS"
        mount -o remount,bind,ro "$R$PRODUCTS"
        for dir in "$R"/usr/lib/systemd/system-generators "$R"/usr/lib/systemd/system/*.wants "$R"/etc/systemd/system/*.wants; do
            if [ -d "$dir" ]; then mount -t tmpfs tmpfs "$dir"; fi
        done
        : > "$D/layers/empty"
        mount --bind "$D/layers/empty" "$R/etc/fstab"
        cp "$UNITS/sandboxd.service" "$UNITS/sandboxd.socket" "$R/etc/systemd/system/"
        mkdir -p "$R/usr/local/lib/sysusers.d" "$R/usr/local/sbin" "$R/etc/sandboxd"
        cp "$UNITS/sandboxd.sysusers" "$R/usr/local/lib/sysusers.d/sandboxd.conf"
        cp "$DAEMON" "$R/usr/local/sbin/sandboxd"
        if [ -d "$D/overlay" ]; then cp -r "$D/overlay/." "$R/"; fi
        cat > "$R/etc/systemd/system/sandboxd-test.target" <<'UNIT'
        [Unit]
        Description=sandboxd test boot
        Wants=systemd-journald.service systemd-sysusers.service sandboxd.socket
        UNIT
        mkdir "$R/.oldroot"
        cd "$R"
        pivot_root . .oldroot
        umount -l /.oldroot
        exec /usr/bin/env -i container=sandboxd-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            /lib/systemd/systemd --unit=sandboxd-test.target --log-target=journal --show-status=no

        """#
}
