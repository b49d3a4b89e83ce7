#!/usr/bin/env bash
# Build the offline base image amlemu/base:bookworm from Debian packages.
#
# No container registry is reachable on the project's machines, so the base image
# is bootstrapped with debootstrap from the Debian mirror apt already uses on this
# host and imported with `docker import`. Idempotent: does nothing when the image
# exists, unless --force is given.
#
# usage: docker/base/build-base.sh [--force]
# env:   AMLEMU_BASE_IMAGE     tag to build        (default amlemu/base:bookworm)
#        AMLEMU_DEBIAN_MIRROR  mirror URI override (default: read from apt's sources)
set -euo pipefail

IMAGE=${AMLEMU_BASE_IMAGE:-amlemu/base:bookworm}
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,ca-certificates
AML_UID=1000

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force|-f) FORCE=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-base: unknown argument: $arg (usage: $0 [--force])" >&2; exit 2 ;;
  esac
done

T0=$SECONDS
log() { printf '[build-base %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf '[build-base] ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker CLI not found (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "Docker engine not reachable: start it with: dockerd &  (or run .ci/run)"

OLD_ID=""
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  OLD_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE")
  if [ "$FORCE" -eq 0 ]; then
    log "$IMAGE already present (${OLD_ID:0:19}); nothing to do (use --force to rebuild)"
    exit 0
  fi
  log "$IMAGE present; --force given, rebuilding"
fi

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install -y debootstrap)"

# --- the Debian mirror apt uses on this host -------------------------------------
# apt reads /etc/apt/sources.list, /etc/apt/sources.list.d/*.list (one-line format)
# and /etc/apt/sources.list.d/*.sources (deb822). Take the first enabled "deb" entry
# whose suites include exactly $SUITE (that excludes bookworm-security/-updates).
detect_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [opts] URI SUITE COMPONENTS...
    awk -v suite="$SUITE" '
      /^[[:space:]]*#/ { next }
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i+1) == suite) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas separated by blank lines; comments start with '#'
    awk -v suite="$SUITE" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(suites, s, " ")
          for (k = 1; k <= n; k++) if (s[k] == suite) { split(uris, u, " "); print u[1]; found = 1; exit }
        }
        types = ""; uris = ""; suites = ""; enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0
        else if (key == "uris") uris = $0
        else if (key == "suites") suites = $0
        else if (key == "enabled") enabled = tolower($0)
      }
      END { if (!found) flush() }' "$f"
  done
}

MIRROR=${AMLEMU_DEBIAN_MIRROR:-}
if [ -z "$MIRROR" ]; then
  MIRROR=$(detect_mirror | head -n1)
fi
[ -n "$MIRROR" ] || die "could not find a Debian '$SUITE' mirror in /etc/apt/sources.list{,.d/*}; set AMLEMU_DEBIAN_MIRROR"
log "building $IMAGE from Debian $SUITE (mirror from apt sources: $MIRROR)"

# --- temp rootfs, always cleaned up ------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/amlemu-base.XXXXXX")
ROOTFS="$WORK/rootfs"
DBLOG="$WORK/debootstrap.log"
cleanup() {
  local rc=$?
  # debootstrap mounts proc/sys inside the rootfs and may leave them on failure:
  # unmount everything below it before deleting, and never cross file systems.
  if [ -d "$ROOTFS" ]; then
    awk -v r="$ROOTFS" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  rm -rf --one-file-system "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. debootstrap ----------------------------------------------------------------
log "step 1/4: debootstrap --variant=minbase --include=$PACKAGES $SUITE (about 45 s; log: $DBLOG)"
set +e
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" 2>&1 |
  tee "$DBLOG" |
  grep --line-buffered -E '^(E|W): |^I: (Retrieving (In)?Release|Checking Release signature|Valid Release signature|Validating Release|Retrieving Packages|Resolving dependencies|Found (additional )?(base|required) packages|Checking component|Retrieving packages\.*$|Installing core packages|Unpacking the base system|Configuring the base system|Base system installed)' |
  sed -u 's/^/    /'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "----- last lines of debootstrap output -----" >&2
  tail -n 40 "$DBLOG" >&2
  die "debootstrap failed (exit $rc)"
fi

# --- 2. user aml, trimming -----------------------------------------------------------
log "step 2/4: adding user aml (uid $AML_UID) and trimming the rootfs"
if ! chroot "$ROOTFS" id -u aml >/dev/null 2>&1; then
  if ! chroot "$ROOTFS" /usr/sbin/useradd --create-home --uid "$AML_UID" --user-group --shell /bin/bash aml; then
    # fallback: write the account files directly
    log "  useradd in chroot failed; editing /etc/passwd, /etc/group, /etc/shadow directly"
    echo "aml:x:$AML_UID:$AML_UID::/home/aml:/bin/bash" >> "$ROOTFS/etc/passwd"
    echo "aml:x:$AML_UID:" >> "$ROOTFS/etc/group"
    [ -f "$ROOTFS/etc/shadow" ] && echo "aml:!:19000:0:99999:7:::" >> "$ROOTFS/etc/shadow"
    [ -f "$ROOTFS/etc/gshadow" ] && echo "aml:!::" >> "$ROOTFS/etc/gshadow"
    mkdir -p "$ROOTFS/home/aml"
    cp -a "$ROOTFS/etc/skel/." "$ROOTFS/home/aml/" 2>/dev/null || true
    chown -R "$AML_UID:$AML_UID" "$ROOTFS/home/aml"
  fi
fi
[ "$(chroot "$ROOTFS" id -u aml)" = "$AML_UID" ] || die "user aml does not have uid $AML_UID in the rootfs"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/debootstrap
# Docker manages these per container.
: > "$ROOTFS/etc/resolv.conf"
: > "$ROOTFS/etc/hostname"
log "  rootfs size: $(du -sh --one-file-system "$ROOTFS" | cut -f1)"

# --- 3. import -----------------------------------------------------------------------
log "step 3/4: docker import -> $IMAGE"
tar --numeric-owner -C "$ROOTFS" -c . |
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV LC_ALL=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL com.amlemu.kind=base' \
    --change "LABEL com.amlemu.debian-suite=$SUITE" \
    --change 'CMD ["python3"]' \
    --message "amlemu offline base: debootstrap $SUITE minbase + $PACKAGES" \
    - "$IMAGE" >/dev/null

# --- 4. check ------------------------------------------------------------------------
log "step 4/4: checking the image"
docker run --rm --network none "$IMAGE" python3 -c 'import sys, venv, ensurepip; print("    python", sys.version.split()[0])'
NEW_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
  # the replaced image is now untagged; drop it unless something still uses it
  docker image rm "$OLD_ID" >/dev/null 2>&1 && log "  removed the previous image ${OLD_ID:0:19}" || true
fi
log "done: $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $((SECONDS - T0)) s"
