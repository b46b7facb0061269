#!/usr/bin/env bash
# Installs what mxray's tests need, when it is missing: real Postfix,
# Dovecot, unbound, swaks and pflogsumm from Debian's packages. Their
# services are not started here; the tests start their own instances on
# loopback.
set -euo pipefail

pkgs=(postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved
      swaks unbound pflogsumm python3 ca-certificates postgresql chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test-deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
