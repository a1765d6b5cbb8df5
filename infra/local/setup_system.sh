#!/usr/bin/env bash
# The system step of `make setup`: install the Debian packages of a list (default system-packages.txt)
# that are not installed yet, with apt-get as root, else through sudo (never asking for a password),
# else stop with one sentence naming the packages and the command to run.
#   setup_system.sh [LIST] [--dry-run]   --dry-run (or GCPIPE_SETUP_DRY_RUN=1): print the commands only
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
list="$here/system-packages.txt"
dry_run="${GCPIPE_SETUP_DRY_RUN:-}"
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    *) list="$arg" ;;
  esac
done

if ! command -v dpkg-query >/dev/null; then
  echo "error: the system packages in $list are Debian packages and this is not a Debian-based system: install their equivalents by hand." >&2
  exit 1
fi
missing=()
while read -r package; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" | awk '{print $1}')
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
  run=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  run=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  echo "error: the Debian packages ${missing[*]} are missing and installing them needs root: run \`sudo apt-get install ${missing[*]}\`, then \`make setup\` again." >&2
  exit 1
fi
echo "system packages: $([ -n "$dry_run" ] && echo missing || echo installing) ${missing[*]}"
step() {
  if [ -n "$dry_run" ]; then echo "would run: $*"; else "$@"; fi
}
step "${run[@]}" apt-get update -qq
step "${run[@]}" "${install[@]}"
