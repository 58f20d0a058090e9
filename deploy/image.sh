#!/usr/bin/env bash
# Builds gomu's container images with podman and checks them, the way
# `make image` runs it (as root):
#
#   deploy/image.sh build   base images (once, cached), then the replica and
#                           registry images
#   deploy/image.sh check   runs the built image's binaries: every --help, then
#                           two real 3-replica clusters (shm via --local 3; tcp
#                           with the registry image's memcached), SET/GET
#   deploy/image.sh all     build, then check
#
# Everything is made here, from this machine's Debian mirror and Go: no image
# is pulled from a registry. Settings (environment):
#   GOMU_IMAGE_CACHE   cache dir (default /var/cache/gomu-image): the rootfs
#                      tarball and the Go build context live there
#   GOMU_IMAGE         replica image name (default localhost/gomu:latest)
#   GOMU_IMAGE_FORCE=1 redo debootstrap, import and the Go base even if cached
#   GOMU_PODMAN_ROOT   a private podman storage root (default: podman's own,
#                      so `podman run` and compose see the images as is)
#   GOMU_CHECK_PORT    first client port the check uses (default 26379)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=${GOMU_IMAGE_CACHE:-/var/cache/gomu-image}
FORCE=${GOMU_IMAGE_FORCE:-0}
SUITE=bookworm
BASE_IMAGE=localhost/gomu-debian:$SUITE
REGISTRY_IMAGE=${GOMU_REGISTRY_IMAGE:-localhost/gomu-registry:latest}
IMAGE=${GOMU_IMAGE:-localhost/gomu:latest}
PORT0=${GOMU_CHECK_PORT:-26379}
export PATH=$PATH:/usr/local/go/bin

# Podman storage. On this kind of VM (ext4 root, kernel overlayfs available,
# podman running as root) podman's default overlay storage works as is, and
# using it means the images are visible to a plain `podman run`/compose
# afterwards. GOMU_PODMAN_ROOT moves everything into a private store (own
# graph root and run root under it, vfs driver, which works on any
# filesystem, e.g. when the default store is overlay-on-overlay or shared
# with other users who must not see these images); then every podman command
# by hand needs the same --root/--runroot/--storage-driver.
PODMAN=(podman)
if [[ -n ${GOMU_PODMAN_ROOT:-} ]]; then
  PODMAN+=(--root "$GOMU_PODMAN_ROOT/storage" --runroot "$GOMU_PODMAN_ROOT/run" --storage-driver vfs)
fi

say() { printf '==> [%4ds] %s\n' "$SECONDS" "$*"; }
# PHASE names what runs now, for the failure line of an unexpected exit (a
# command that fails under set -e); die gives its own reason.
PHASE=start
DIED=0
die() { printf 'image: FAILED: %s\n' "$*" >&2; DIED=1; exit 1; }
# indent: podman's build output, indented and stamped with the script's
# elapsed seconds, so a slow step is visible in the log.
indent() { local l; while IFS= read -r l; do printf '    %4ds %s\n' "$SECONDS" "$l"; done; }
# steps: only the step lines and errors of a build whose package installs
# are not worth reading (the base images').
steps() { grep --line-buffered -E '^(STEP|COMMIT)|[Ee]rror|^E: ' | indent || true; }
has_image() { "${PODMAN[@]}" image exists "$1"; }

need_root() {
  [[ $(id -u) == 0 ]] || die "run as root (debootstrap, podman image mount and chroot need it)"
  for t in podman debootstrap go tar chroot mount; do
    command -v "$t" >/dev/null || die "$t not found on PATH"
  done
}

# ---- the Debian mirror ------------------------------------------------------
# The base is bootstrapped from the mirror this machine's own apt uses, read
# from /etc/apt/sources.list (one-line "deb URI SUITE ...") and
# sources.list.d/*.sources (deb822 "URIs:"/"Suites:" stanzas): the machine may
# only reach that mirror, so the well-known default is just the fallback.
# Prints two lines: the main archive URI and the security archive URI.
apt_mirrors() {
  local main="" sec=""
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    while read -r typ a b c _; do
      [[ $typ == deb ]] || continue
      # skip an [options] field
      if [[ $a == \[* ]]; then a=$b; b=$c; fi
      case $b in
        "$SUITE") [[ -n $main ]] || main=$a ;;
        "$SUITE"-security|"$SUITE"/updates) [[ -n $sec ]] || sec=$a ;;
      esac
    done < "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # deb822: stanzas separated by blank lines; awk pairs each stanza's URIs
    # with its Suites (comments and Enabled: no are honoured).
    while read -r uri suites; do
      for s in $suites; do
        case $s in
          "$SUITE") [[ -n $main ]] || main=$uri ;;
          "$SUITE"-security) [[ -n $sec ]] || sec=$uri ;;
        esac
      done
    done < <(awk '
      function flush() { if (uri != "" && suites != "" && enabled != "no" && types ~ /(^| )deb( |$)/) print uri, suites; uri = suites = types = ""; enabled = "" }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      tolower($1) == "uris:"    { uri = $2 }
      tolower($1) == "suites:"  { $1 = ""; suites = $0 }
      tolower($1) == "types:"   { $1 = ""; types = $0 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { flush() }' "$f")
  done
  echo "${main:-http://deb.debian.org/debian}"
  echo "${sec:-http://deb.debian.org/debian-security}"
}

# ---- base image: debootstrap minbase -> tar -> podman import -----------------
build_base() {
  local tarball=$CACHE/debian-$SUITE-minbase.tar
  mkdir -p "$CACHE"
  if [[ $FORCE == 1 ]]; then rm -f "$tarball"; fi
  if [[ -s $tarball ]]; then
    say "base: cached rootfs $tarball ($(du -h "$tarball" | cut -f1)), debootstrap skipped"
  else
    local mirrors main sec
    mapfile -t mirrors < <(apt_mirrors)
    main=${mirrors[0]} sec=${mirrors[1]}
    local root=$CACHE/rootfs.tmp
    rm -rf "$root"
    say "base: debootstrap --variant=minbase $SUITE from $main (a few minutes)"
    # minbase: essential packages and apt only, the smallest root that still
    # installs packages, which the Dockerfiles do on top.
    debootstrap --variant=minbase "$SUITE" "$root" "$main" > "$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    # The image's apt uses the same mirror, with the updates and security
    # suites, so packages installed in the Dockerfiles are current.
    cat > "$root/etc/apt/sources.list" <<EOF
deb $main $SUITE main
deb $main $SUITE-updates main
deb $sec $SUITE-security main
EOF
    # Keep every image built on this base small: apt keeps no .debs and no
    # binary package caches (pkgcache.bin and srcpkgcache.bin alone are
    # ~90 MB once the lists are fetched, and `rm -rf /var/lib/apt/lists`
    # does not remove them), and dpkg skips documentation and translations.
    cat > "$root/etc/apt/apt.conf.d/90gomu-slim" <<'EOF'
APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::Install-Recommends "false";
EOF
    cat > "$root/etc/dpkg/dpkg.cfg.d/90gomu-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
    # What a container runtime provides at run time, or what is specific to
    # this machine, does not belong in the image: device nodes (the runtime
    # makes /dev), the host's resolver and name, downloaded .debs and lists.
    rm -rf "${root:?}"/dev/* "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    : > "$root/etc/resolv.conf"
    rm -f "$root/etc/hostname"
    say "base: packing rootfs into $tarball"
    tar -C "$root" --numeric-owner -cpf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  if has_image "$BASE_IMAGE" && [[ $FORCE != 1 ]]; then
    say "base: $BASE_IMAGE exists, import skipped"
  else
    say "base: podman import -> $BASE_IMAGE"
    "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
  fi
}

# ---- Go base: the Debian base + this machine's GOROOT -------------------------
GO_BASE=""
build_go_base() {
  local goroot gover
  goroot=$(go env GOROOT)
  gover=$(go env GOVERSION)
  # The tag names the Go version and the Dockerfile's content, so a new Go
  # on the host or an edited Dockerfile.go-base makes a new base, and an
  # unchanged one is reused without re-reading GOROOT.
  GO_BASE=localhost/gomu-go:$gover-$(sha256sum "$HERE/Dockerfile.go-base" | cut -c1-8)
  if has_image "$GO_BASE" && [[ $FORCE != 1 ]]; then
    say "go base: $GO_BASE exists, skipped"
    return
  fi
  # A build context cannot reach outside itself, so GOROOT is copied into a
  # context directory of its own (kept in the cache: a later forced rebuild of
  # the same Go version needs no copy).
  local ctx=$CACHE/go-base-ctx
  if [[ $(cat "$ctx/version" 2>/dev/null) != "$gover" || $FORCE == 1 ]]; then
    say "go base: copying $goroot ($gover) into $ctx"
    rm -rf "$ctx"; mkdir -p "$ctx"
    cp -a "$goroot" "$ctx/go"
    echo "$gover" > "$ctx/version"
  fi
  # This machine's CA bundle, as `go` here trusts it: module downloads may
  # pass a TLS-inspecting proxy whose CA only the host's bundle holds (it is
  # so on this VM: Debian's stock ca-certificates in the image failed with
  # "x509: certificate signed by unknown authority"). Refreshed every time;
  # it ends up in the build-only Go base, never in the replica image.
  local ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  [[ -r $ca ]] || die "no CA bundle at $ca (set SSL_CERT_FILE)"
  cp "$ca" "$ctx/host-ca.crt"
  say "go base: podman build -> $GO_BASE"
  "${PODMAN[@]}" build --isolation chroot -f "$HERE/Dockerfile.go-base" \
    --build-arg BASE="$BASE_IMAGE" -t "$GO_BASE" "$ctx" 2>&1 | steps
}

build() {
  need_root
  PHASE=build
  local t0=$SECONDS
  build_base
  build_go_base
  # --isolation chroot: RUN steps run in a chroot with the host's network and
  # no cgroup or user namespace setup, which is what works on this VM (cgroup
  # v1 hybrid, no rootless set-up needed) and lets apt and the Go proxy
  # be reached exactly as from the host.
  say "registry: podman build deploy/Dockerfile.registry -> $REGISTRY_IMAGE"
  "${PODMAN[@]}" build --isolation chroot -f "$HERE/Dockerfile.registry" \
    --build-arg BASE="$BASE_IMAGE" -t "$REGISTRY_IMAGE" "$HERE" 2>&1 | steps
  say "image: podman build deploy/Dockerfile -> $IMAGE (go build -tags rdma)"
  "${PODMAN[@]}" build --isolation chroot -f "$HERE/Dockerfile" \
    --build-arg BASE="$BASE_IMAGE" --build-arg GO_BASE="$GO_BASE" \
    --build-arg GOPROXY="$(go env GOPROXY)" --build-arg GOSUMDB="$(go env GOSUMDB)" \
    -t "$IMAGE" "$REPO" 2>&1 | indent
  # No `podman image prune` here: it would also drop the untagged build-stage
  # layers, which are the cache that makes the next build skip apt and the
  # module download. A rebuild after a source change leaves the previous
  # image untagged; `podman image prune` reclaims those by hand.
  # Also as :latest, the Dockerfile's default GO_BASE, so a plain
  # `podman build -f deploy/Dockerfile .` by hand finds it.
  "${PODMAN[@]}" tag "$GO_BASE" localhost/gomu-go:latest
  say "build done in $((SECONDS - t0))s"
}

# ---- check ----------------------------------------------------------------
# The image is checked by chroot into its mounted root, not by `podman run`:
# on this VM root lacks CAP_SYS_RESOURCE, so the OCI runtime cannot apply the
# rlimits podman always sets (crun: "setrlimit RLIMIT_NOFILE: Operation not
# permitted", and memlock=-1 fails the same way), while a chroot needs
# neither. What runs is still the image's own files: its loader, its
# libibverbs, its binaries.
# State the exit trap cleans up, whatever failed.
MOUNTED_IMAGES=()   # images podman image-mounted
BIND_MOUNTS=()      # mount points, unmounted in reverse order
PIDS=()             # process group leaders started (setsid)
WORK=""

# release: stops what the check started and undoes every mount, in reverse
# order; idempotent (it empties its lists), so the check calls it itself on
# success and the EXIT trap calls it again on any failure.
release() {
  local p i
  stop_all
  for ((i = ${#BIND_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${BIND_MOUNTS[i]}" 2>/dev/null || umount -l "${BIND_MOUNTS[i]}" 2>/dev/null \
      || echo "image: could not unmount ${BIND_MOUNTS[i]}" >&2
  done
  BIND_MOUNTS=()
  for i in "${MOUNTED_IMAGES[@]}"; do "${PODMAN[@]}" image umount "$i" >/dev/null 2>&1 || true; done
  MOUNTED_IMAGES=()
}

on_exit() {
  local rc=$?
  set +e
  release
  if [[ $rc != 0 && -n $WORK && -d $WORK ]]; then
    echo "image: check logs kept in $WORK" >&2
  elif [[ -n $WORK ]]; then
    rm -rf "$WORK"
  fi
  if [[ $rc != 0 && $DIED == 0 ]]; then
    echo "image: FAILED during $PHASE (exit status $rc; see the output above)" >&2
  fi
  exit "$rc"
}

# mount_root IMAGE: podman image mount, then what a process in the chroot
# needs from the host: /proc (Go's runtime and os.Executable, which the
# --local launcher re-executes), /dev (null, urandom; /dev/infiniband when
# there is one), /dev/shm (the shm provider's fabric directory), /sys (Go
# reads the cgroup limits there) and a writable /tmp (the image mount is
# read-only, and replicas make their pause fifos in /tmp). Prints the root.
mount_root() {
  local img=$1 root
  root=$("${PODMAN[@]}" image mount "$img") || die "podman image mount $img failed"
  MOUNTED_IMAGES+=("$img")
  local d
  for d in proc sys dev dev/shm; do
    [[ -d $root/$d ]] || die "$img has no /$d to mount on"
    mount --bind "/$d" "$root/$d"; BIND_MOUNTS+=("$root/$d")
  done
  mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"; BIND_MOUNTS+=("$root/tmp")
  ROOT=$root
}

# start NAME CMD...: runs CMD in the background in a new session (its own
# process group, so cleanup stops it and every child), output to WORK/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" > "$WORK/$name.log" 2>&1 < /dev/null &
  PIDS+=($!)
}

# resp PORT ARGS...: one Redis command. Debian's redis-cli when the host has
# it; otherwise a minimal RESP exchange over bash's /dev/tcp (the check is
# about the image's server binaries, not about the client).
resp() {
  local port=$1; shift
  if command -v redis-cli >/dev/null; then
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>&1
    return
  fi
  local req="*$#"$'\r\n' a line
  for a in "$@"; do req+="\$${#a}"$'\r\n'"$a"$'\r\n'; done
  exec 9<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%s' "$req" >&9
  IFS= read -r -t 5 line <&9 || { exec 9>&-; return 1; }
  line=${line%$'\r'}
  case $line in
    \$-1) echo "" ;;
    \$*) IFS= read -r -t 5 line <&9; echo "${line%$'\r'}" ;;
    [+:]*) echo "${line:1}" ;;
    -*) echo "(error) ${line:1}" ;;
    *) echo "$line" ;;
  esac
  exec 9>&-
}

pong() { [[ $(resp "$1" PING 2>/dev/null) == PONG ]]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# until_ok SECONDS DESC CMD...: retries CMD every 0.2 s until it succeeds.
until_ok() {
  local secs=$1 desc=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < end)) || { echo "  timed out after ${secs}s: $desc" >&2; return 1; }
    sleep 0.2
  done
}

# alive PID: the process exists and is not a zombie (our own children stay
# zombies until waited for, and kill -0 would still see them).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]; }

# stop_all: SIGTERM to every started process group (the --local launcher and
# the replicas shut down on it), SIGKILL to what is still there after 15 s.
stop_all() {
  local p i
  for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for ((i = 0; i < 150; i++)); do alive "$p" || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}

show_logs() {
  local f
  for f in "$WORK"/*.log; do echo "--- $f (last 15 lines)"; tail -15 "$f"; done >&2
}

# set_get WRITE_PORT KEY VALUE READ_PORTS...: SET on the leader's port, then
# GET on each port must return VALUE (followers read linearizably).
set_get() {
  local wport=$1 key=$2 val=$3; shift 3
  local out p
  out=$(resp "$wport" SET "$key" "$val") || true
  [[ $out == OK ]] || { show_logs; die "SET $key on port $wport answered '$out'"; }
  echo "  SET $key $val on :$wport -> OK"
  for p in "$@"; do
    out=$(resp "$p" GET "$key") || true
    [[ $out == "$val" ]] || { show_logs; die "GET $key on port $p answered '$out', want '$val'"; }
    echo "  GET $key on :$p -> $out"
  done
}

check() {
  need_root
  local t0=$SECONDS
  has_image "$IMAGE" || die "$IMAGE not built (deploy/image.sh build)"
  has_image "$REGISTRY_IMAGE" || die "$REGISTRY_IMAGE not built (deploy/image.sh build)"
  WORK=$(mktemp -d /tmp/gomu-image-check.XXXXXX)
  PHASE=check

  say "check: podman image mount $IMAGE, bind /proc /sys /dev /dev/shm, tmpfs /tmp"
  mount_root "$IMAGE"; local R=$ROOT
  mount_root "$REGISTRY_IMAGE"; local RR=$ROOT
  local in=(chroot "$R" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root)

  # 1. Every binary starts: the dynamic loader finds libibverbs and the CLI
  # parses. A missing library or a broken build fails here.
  local bins=() b n=0
  mapfile -t bins < <(cd "$R/usr/local/bin" && ls)
  ((${#bins[@]} > 0)) || die "no binaries in $IMAGE:/usr/local/bin"
  say "check: --help of ${#bins[@]} binaries in the chroot"
  for b in "${bins[@]}"; do
    if ! timeout 20 "${in[@]}" "$b" --help > "$WORK/help-$b.log" 2>&1; then
      cat "$WORK/help-$b.log" >&2
      die "$b --help failed in $IMAGE"
    fi
    n=$((n + 1))
  done
  echo "  $n/${#bins[@]} ok: ${bins[*]}"
  for b in redis-server-replicated memcached-replicated orderbook-server main-st verbs-lat; do
    [[ -x $R/usr/local/bin/$b ]] || die "$b missing from $IMAGE"
  done
  if ! "${in[@]}" sh -c 'ldd /usr/local/bin/redis-server-replicated' | grep -q libibverbs; then
    die "redis-server-replicated is not linked against libibverbs (built without -tags rdma?)"
  fi
  echo "  redis-server-replicated links libibverbs (ibv provider compiled in)"

  # 2. shm: the launcher's own 3-replica cluster (embedded registry, one
  # process per replica, fabric in /dev/shm).
  local p1=$PORT0 p2=$((PORT0 + 1)) p3=$((PORT0 + 2))
  say "check: shm cluster: redis-server-replicated --local 3 --port $p1 (chroot)"
  start shm-local "${in[@]}" redis-server-replicated --local 3 --port "$p1"
  until_ok 60 "shm cluster leader on :$p1" pong "$p1" \
    || { show_logs; die "shm cluster did not come up"; }
  set_get "$p1" gomu:shm "hello-from-shm-$$" "$p1" "$p2" "$p3"
  stop_all
  echo "  stopped"

  # 3. tcp: the deployment's shape. The registry image's memcached, three
  # separate replica processes on the software NIC, each with SID/IDS/
  # DORY_REGISTRY_IP and --advertise, all on 127.0.0.1 (the chroots share
  # the host's network).
  local rport=$((PORT0 + 10)) dev0=$((PORT0 + 20)) i
  local tp=($((PORT0 + 3)) $((PORT0 + 4)) $((PORT0 + 5)))
  say "check: tcp cluster: registry memcached :$rport ($REGISTRY_IMAGE), 3 replicas --transport tcp"
  start registry chroot "$RR" /usr/bin/env -i PATH=/usr/bin:/bin memcached -u nobody -l 127.0.0.1 -p "$rport"
  until_ok 20 "memcached on :$rport" port_open "$rport" \
    || { show_logs; die "registry did not start"; }
  for i in 1 2 3; do
    start "tcp-$i" chroot "$R" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root \
      SID=$i IDS=1,2,3 DORY_REGISTRY_IP=127.0.0.1:$rport \
      redis-server-replicated --transport tcp --device "127.0.0.1:$((dev0 + i))" \
      --bind 127.0.0.1 --port "${tp[i-1]}" --advertise "127.0.0.1:${tp[i-1]}" \
      --cluster gomu-image-check-$$ --fifo -
  done
  # Whichever replica is leader answers SET with OK; the others redirect
  # (READONLY) or are still electing (TRYAGAIN).
  local leader=""
  find_leader() {
    local p out
    for p in "${tp[@]}"; do
      out=$(resp "$p" SET gomu:probe 1 2>/dev/null) || continue
      if [[ $out == OK ]]; then leader=$p; return 0; fi
    done
    return 1
  }
  until_ok 60 "a tcp leader" find_leader || { show_logs; die "tcp cluster elected no leader"; }
  echo "  leader answers on :$leader"
  set_get "$leader" gomu:tcp "hello-from-tcp-$$" "${tp[@]}"
  stop_all
  echo "  stopped"
  say "check: unmounting"
  release
  say "check done in $((SECONDS - t0))s"
}

summary() {
  local size
  size=$("${PODMAN[@]}" image ls --format '{{.Size}}' "$IMAGE" | head -1)
  echo "image: built $IMAGE ($size), check passed"
}

# One exit path for every failure: mounts and processes are released, and the
# last line says the run failed.
trap on_exit EXIT
trap 'die "interrupted by a signal"' INT TERM

case ${1:-all} in
  build) build; echo "image: built $IMAGE ($("${PODMAN[@]}" image ls --format '{{.Size}}' "$IMAGE" | head -1))" ;;
  check) check; summary ;;
  all) build; check; summary ;;
  *) echo "usage: $0 build|check|all" >&2; DIED=1; exit 2 ;;
esac
