#!/usr/bin/env bash
# Builds the runtime image (runtime/Dockerfile) on this machine with podman and runc from Debian's packages, where
# no container registry is reachable, then runs it and checks it:
#   1. podman, runc and debootstrap from Debian's packages (installed when missing; needs root);
#   2. a base image assembled here instead of pulled: a Debian bookworm minbase rootfs made by debootstrap from
#      Debian's mirror plus this machine's own Node.js and npm (BASE_FROM=debootstrap), or, when the mirror is not
#      reachable, a rootfs of this machine's node, npm, a shell and the few tools the Dockerfile runs, with the
#      shared libraries ldd says they link (BASE_FROM=host); it is imported and tagged $BASE_IMAGE;
#   3. `podman build -f runtime/Dockerfile --build-arg BASE=$BASE_IMAGE` from the repository root (npm ci inside
#      the build reaches the npm registry);
#   4. `modelmesh --version` and `modelmesh runtime example --help` in the image, then `modelmesh runtime onnx` and
#      `modelmesh serve` (KV_STORE=embedded) in two containers sharing one network namespace, as a pod's containers
#      do, with a read-only root filesystem and tmpfs at /tmp and /models; waits for /live and /ready, registers the
#      sample model the image ships (`modelmesh models register`) and checks one KServe v2 REST inference on it;
#   5. prints the image's size.
# Not part of `npm test`. Run it as root from anywhere: scripts/build-image.sh
#
# Settings (environment):
#   IMAGE        tag of the built image              (default ghcr.io/cdk8s-modelmesh/modelmesh:<package version>)
#   BASE_IMAGE   tag of the assembled base           (default localhost/cdk8s-modelmesh-base:node<node version>-bookworm)
#   BASE_FROM    auto | debootstrap | host           (default auto: debootstrap when Debian's mirror answers)
#   REBUILD_BASE 1 assembles the base again even when $BASE_IMAGE exists
#   CHECK_ONLY   1 skips the base and the build and runs the checks on the existing $IMAGE
#   IF_CHANGED   1 does nothing when $IMAGE exists and was built from the build context as it is now (its label
#                $SOURCE_LABEL holds a digest of the context's files and the base image)
#   DEBIAN_MIRROR                                    (default: the first deb.debian.org-style URI in apt's sources)
#
# podman here: runc (crun fails in this VM: setrlimit under hybrid cgroups), the vfs storage driver, and lower
# default ulimits. The configuration is written to /var/tmp/cdk8s-modelmesh-podman/; to use the image afterwards:
#   export CONTAINERS_CONF=/var/tmp/cdk8s-modelmesh-podman/containers.conf
#   export CONTAINERS_STORAGE_CONF=/var/tmp/cdk8s-modelmesh-podman/storage.conf
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START=$(date +%s)
say() { printf 'build-image [%4ss]: %s\n' "$(( $(date +%s) - START ))" "$*"; }
fail() { printf 'build-image: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root: podman runs rootful here (rootless needs subuid ranges and fuse, which this VM lacks), and debootstrap needs root"
command -v node >/dev/null || fail "node is not on PATH: the base image is assembled from this machine's Node.js"

VERSION=$(node -p "require('$REPO/runtime/package.json').version")
NODE_VERSION=$(node -p 'process.versions.node')
IMAGE=${IMAGE:-ghcr.io/cdk8s-modelmesh/modelmesh:$VERSION}
BASE_IMAGE=${BASE_IMAGE:-localhost/cdk8s-modelmesh-base:node$NODE_VERSION-bookworm}
BASE_FROM=${BASE_FROM:-auto}
CONF_DIR=/var/tmp/cdk8s-modelmesh-podman
WORK=$(mktemp -d /var/tmp/mm-image-build.XXXXXX)
CHECK=mm-image-check-$$
SOURCE_LABEL=io.cdk8s-modelmesh.source-digest
STARTED=()

# Removes the containers this run started, the last first (the mesh shares the runtime container's network).
remove_started() {
  local i
  for (( i=${#STARTED[@]}-1; i>=0; i-- )); do podman rm -f -t 5 "${STARTED[$i]}" >/dev/null 2>&1 || true; done
  STARTED=()
}
cleanup() {
  remove_started
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- 1. tools ----
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
if [ "$BASE_FROM" != host ]; then command -v debootstrap >/dev/null || missing+=(debootstrap); fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} from Debian's packages"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || fail "apt-get could not install ${missing[*]}; podman 4.3, runc and debootstrap are Debian bookworm packages"
fi
say "podman $(podman --version | awk '{print $3}'), $(runc --version | head -1)"

# ---- 2. podman configuration ----
mkdir -p "$CONF_DIR"
cat > "$CONF_DIR/containers.conf" <<'EOF'
# Written by scripts/build-image.sh. crun fails in this VM (setrlimit with hybrid cgroups): use runc, and keep the
# default ulimits below what the VM allows.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=1000:1000"]

[engine]
runtime = "runc"
EOF
cat > "$CONF_DIR/storage.conf" <<'EOF'
# Written by scripts/build-image.sh: vfs, since overlay is not usable on this VM's filesystem.
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
export CONTAINERS_CONF=$CONF_DIR/containers.conf
export CONTAINERS_STORAGE_CONF=$CONF_DIR/storage.conf
podman info --format '{{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}}' > "$WORK/info" 2>&1 \
  || fail "podman info failed: $(cat "$WORK/info")"
read -r driver runtime < "$WORK/info"
if [ "$driver" != vfs ] || [ "$runtime" != runc ]; then
  fail "podman uses storage driver '$driver' and runtime '$runtime', expected vfs and runc (is /var/lib/containers/storage from another driver? podman system reset clears it)"
fi

# The digest of what a build would use: every file of the build context (the paths the root .dockerignore lets
# through), the Dockerfile, and the base image.
source_digest() {
  local paths=()
  mapfile -t paths < <(sed -n 's/^!\(.*\)$/\1/p' "$REPO/.dockerignore")
  {
    (cd "$REPO" && find "${paths[@]}" runtime/Dockerfile -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    podman image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || echo "no base"
  } | sha256sum | cut -c1-64
}

if [ "${IF_CHANGED:-0}" = 1 ] && podman image exists "$IMAGE" \
    && [ "$(podman image inspect --format "{{index .Labels \"$SOURCE_LABEL\"}}" "$IMAGE")" = "$(source_digest)" ]; then
  say "$IMAGE is current (built from this build context and base); nothing to do"
  exit 0
fi

# ---- 3. the base image, assembled here ----
mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | head -1 | grep -oE 'https?://[^ ]+' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# Copies a program and every shared library ldd says it links into the rootfs, at the same paths.
copy_with_libs() {
  local rootfs=$1 program=$2 lib
  install -D -m 0755 "$program" "$rootfs$program"
  for lib in $(ldd "$program" 2>/dev/null | grep -oE '/[^ ]+' || true); do
    [ -e "$rootfs$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done
}

# This machine's node and npm, where the official node images have them.
add_node() {
  local rootfs=$1 npm_dir
  npm_dir="$(npm root -g)/npm"
  [ -f "$npm_dir/bin/npm-cli.js" ] || fail "npm is not at $npm_dir (npm root -g): the base needs npm for the build stage"
  install -D -m 0755 "$(readlink -f "$(command -v node)")" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
}

rootfs_debootstrap() {
  local rootfs=$1 url
  url=$(mirror)
  say "base: debootstrap --variant=minbase bookworm from $url"
  debootstrap --variant=minbase bookworm "$rootfs" "$url" > "$WORK/debootstrap.log" 2>&1 \
    || fail "debootstrap from $url failed (last lines below); BASE_FROM=host assembles the base from this machine's files instead
$(tail -5 "$WORK/debootstrap.log")"
  add_node "$rootfs"
  # What node:*-slim leaves out too: package caches and lists, documentation.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
}

rootfs_host() {
  local rootfs=$1 tool path
  say "base: this machine's node, npm, dash and coreutils with the libraries they link (ldd)"
  mkdir -p "$rootfs"/{bin,etc,tmp,root,usr/bin,usr/local/bin,usr/sbin,var/tmp}
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  # The tools the Dockerfile's RUN steps and npm use.
  for tool in sh dash bash env mkdir rm mv cp ln ls cat chown chmod test tar gzip id uname tr head grep sed find; do
    path=$(type -P "$tool" || true)
    [ -n "$path" ] || fail "BASE_FROM=host: '$tool' is not on this machine"
    path=$(readlink -f "$path")
    copy_with_libs "$rootfs" "$path"
    # Reachable under /bin and /usr/bin whatever the usrmerge state of the host.
    [ -e "$rootfs/bin/$tool" ] || ln -s "$path" "$rootfs/bin/$tool"
    [ -e "$rootfs/usr/bin/$tool" ] || ln -s "$path" "$rootfs/usr/bin/$tool"
  done
  ln -sf "$(readlink -f "$(type -P dash)")" "$rootfs/bin/sh"
  copy_with_libs "$rootfs" "$(readlink -f "$(command -v node)")"
  add_node "$rootfs"
  # Native modules the image installs link glibc libraries node itself does not (onnxruntime-node: librt).
  for lib in librt.so.1 libresolv.so.2; do
    path=$(ldconfig -p | awk -v lib="$lib" '$1 == lib && /x86-64|AArch64|64bit/ { print $NF; exit }')
    [ -n "$path" ] || fail "BASE_FROM=host: $lib is not on this machine"
    install -D -m 0755 "$(readlink -f "$path")" "$rootfs$path"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  cp /etc/nsswitch.conf "$rootfs/etc/" 2>/dev/null || true
}

if [ "${CHECK_ONLY:-0}" = 1 ]; then
  :
elif [ "${REBUILD_BASE:-0}" != 1 ] && podman image exists "$BASE_IMAGE"; then
  say "base: $BASE_IMAGE exists (REBUILD_BASE=1 assembles it again)"
else
  if [ "$BASE_FROM" = auto ]; then
    if curl -fsS -m 10 -o /dev/null "$(mirror)/dists/bookworm/Release" 2>/dev/null; then BASE_FROM=debootstrap; else BASE_FROM=host; fi
  fi
  rootfs=$WORK/rootfs
  case "$BASE_FROM" in
    debootstrap) rootfs_debootstrap "$rootfs" ;;
    host) rootfs_host "$rootfs" ;;
    *) fail "BASE_FROM must be auto, debootstrap or host, not '$BASE_FROM'" ;;
  esac
  env -u NODE_EXTRA_CA_CERTS chroot "$rootfs" /usr/local/bin/node -e 'process.exit(0)' \
    || fail "this machine's node does not run inside the assembled rootfs (missing shared library?)"
  say "base: importing $(du -sh "$rootfs" | cut -f1) as $BASE_IMAGE"
  previous_base=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
  tar -C "$rootfs" -cf - . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change 'CMD ["node"]' \
    --message "assembled by scripts/build-image.sh ($BASE_FROM)" - "$BASE_IMAGE" > "$WORK/import.log" 2>&1 \
    || fail "podman import of the base rootfs failed: $(tail -5 "$WORK/import.log")"
  rm -rf "$rootfs"
  # The base this tag named before, now untagged, goes (unless an image still builds on it).
  if [ -n "$previous_base" ]; then podman rmi "$previous_base" > /dev/null 2>&1 || true; fi
fi

# ---- 4. the image ----
build_args=(--build-arg "BASE=$BASE_IMAGE")
volumes=()
# This machine reaches the npm registry through a TLS-intercepting proxy whose CA is in the system bundle: hand that
# bundle to the build stage (a build-time mount, in no layer).
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  volumes+=(-v "$NODE_EXTRA_CA_CERTS:/run/build-ca.crt:ro")
  build_args+=(--build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt)
elif [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  volumes+=(-v /etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro)
  build_args+=(--build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt)
fi
if [ "${CHECK_ONLY:-0}" = 1 ]; then
  podman image exists "$IMAGE" || fail "CHECK_ONLY=1 but there is no image $IMAGE to check"
  say "checking the existing $IMAGE (CHECK_ONLY=1)"
else
say "building $IMAGE from runtime/Dockerfile (BASE=$BASE_IMAGE)"
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# Host networking for the build's RUN steps: npm ci needs the registry, and the VM's bridge networking is not needed.
# No layer cache: with vfs every cached step is a full copy of the filesystem (a cached build took 15 GB here).
if ! podman build --pull=never --network host --layers=false --label "$SOURCE_LABEL=$(source_digest)" -f "$REPO/runtime/Dockerfile" "${build_args[@]}" "${volumes[@]}" \
    -t "$IMAGE" "$REPO" > "$WORK/build.log" 2>&1; then
  tail -30 "$WORK/build.log" >&2
  fail "podman build failed (output above)"
fi
current=$(podman image inspect --format '{{.Id}}' "$IMAGE")
# The image this tag named before, now untagged, goes (unless a container still uses it).
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then podman rmi "$previous" > /dev/null 2>&1 || true; fi
grep -E 'STEP [0-9]+/[0-9]+: (FROM|RUN)|COMMIT|Successfully tagged' "$WORK/build.log" | cut -c1-150 | sed 's/^/  /'
fi

# ---- 5. run it ----
got=$(podman run --rm "$IMAGE" --version 2>&1) || fail "modelmesh --version in the image failed: $got"
[ "$got" = "$VERSION" ] || fail "modelmesh --version printed '$got', expected '$VERSION'"
say "modelmesh --version in the image: $got"

# As a pod runs it: read-only root, tmpfs where the constructs mount emptyDirs, the image's user (uid 2000), the
# model server and the mesh in two containers sharing one network namespace (no ports published: the checks run
# inside it).
got=$(podman run --rm "$IMAGE" runtime example --help 2>&1 | head -1) || fail "modelmesh runtime example --help failed: $got"
# shellcheck disable=SC2054 # the commas belong to the --tmpfs options
run_opts=(--read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=64m,mode=1777 --tmpfs /models:rw,size=64m,mode=1777)
podman run -d --name "$CHECK-runtime" --network none "${run_opts[@]}" "$IMAGE" runtime onnx --port 8085 > /dev/null
STARTED+=("$CHECK-runtime")
podman run -d --name "$CHECK-mesh" --network "container:$CHECK-runtime" "${run_opts[@]}" \
  -e MM_SERVICE_NAME=image-check -e KV_STORE=embedded -e INTERNAL_GRPC_PORT=8085 -e MM_METRICS=disabled \
  "$IMAGE" serve > /dev/null
STARTED+=("$CHECK-mesh")

probe() { # probe <path>: the HTTP status of the mesh's probe port, asked from inside the mesh container
  podman exec "$CHECK-mesh" node -e "require('http').get('http://127.0.0.1:8089$1', (r) => { console.log(r.statusCode); r.resume(); })
    .on('error', () => console.log(0))" 2>/dev/null || echo 0
}
deadline=$(( $(date +%s) + 90 ))
until [ "$(probe /live)" = 200 ]; do
  if [ "$(podman inspect -f '{{.State.Running}}' "$CHECK-mesh" 2>/dev/null)" != true ] || [ "$(date +%s)" -gt "$deadline" ]; then
    podman logs "$CHECK-mesh" 2>&1 | tail -20 >&2
    fail "modelmesh serve in the image did not answer /live (its log above)"
  fi
  sleep 1
done
say "modelmesh serve in the image answers /live: 200"
until [ "$(probe /ready)" = 200 ]; do
  [ "$(date +%s)" -le "$deadline" ] || { podman logs "$CHECK-mesh" 2>&1 | tail -20 >&2; fail "the mesh never became ready (its log above)"; }
  sleep 1
done
say "and /ready: 200 (the ONNX model server in the second container answered the mesh)"
uid=$(podman exec "$CHECK-mesh" node -p 'process.getuid()')
[ "$uid" = 2000 ] || fail "the mesh runs as uid $uid, expected 2000"

# The sample model the image ships, registered through the operator command and answered over KServe v2 REST.
sample=/opt/modelmesh/runtime/models/sample/model.onnx
out=$(podman exec "$CHECK-mesh" modelmesh models register sample --type onnx --path "$sample" --load 2>&1) \
  || fail "modelmesh models register in the image failed: $out"
answer=$(podman exec "$CHECK-mesh" node -e "
  fetch('http://127.0.0.1:8008/v2/models/sample/infer', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }) })
    .then((r) => r.json()).then((b) => console.log(JSON.stringify(b.outputs ? b.outputs[0].data : b)), (e) => console.log(e.message));" 2>&1)
[ "$answer" = '[2.25,13,4.5]' ] || fail "inference on the sample model in the image answered $answer, expected [2.25,13,4.5]"
say "inference on the shipped sample model through the mesh in the image: $answer"
podman exec "$CHECK-mesh" modelmesh status 2>&1 | sed 's/^/  /'
remove_started

# ---- 6. size ----
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
base_size=$(podman image inspect "$BASE_IMAGE" --format '{{.Size}}')
say "done: $IMAGE is $(numfmt --to=iec-i --suffix=B "$size") ($size bytes; base $BASE_IMAGE $(numfmt --to=iec-i --suffix=B "$base_size"))"
say "use it with: export CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
