#!/usr/bin/env bash
# Host the dashboard on this Debian machine behind nginx: TLS, one login in front of everything,
# an upload cap, and a systemd service. Run from the checkout, as root, after the README's
# dashboard set-up command has made .venv:
#
#   sudo deploy/setup-proxy.sh alice                 # self-signed certificate for this host
#   sudo deploy/setup-proxy.sh alice cert.pem key.pem
#
# It asks for alice's password (or reads NC_PROXY_PASSWORD). Add users later with
#   printf 'bob:%s\n' "$(openssl passwd -6)" | sudo tee -a /etc/neural-cleanse/htpasswd
set -euo pipefail
user="${1:?usage: setup-proxy.sh USER [CERT KEY]}"
checkout="$(cd "$(dirname "$0")/.." && pwd)"
config=/etc/neural-cleanse

apt-get install -y nginx openssl
install -d -m 750 -g www-data "$config"

password="${NC_PROXY_PASSWORD:-}"
if [ -z "$password" ]; then
    read -rsp "Password for $user: " password
    echo
fi
printf '%s:%s\n' "$user" "$(openssl passwd -6 -stdin <<<"$password")" >"$config/htpasswd"

if [ $# -ge 3 ]; then
    install -m 640 -g www-data "$2" "$config/tls.crt"
    install -m 640 -g www-data "$3" "$config/tls.key"
elif [ ! -f "$config/tls.crt" ]; then  # browsers will warn: replace with a real certificate
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=$(hostname -f)" \
        -keyout "$config/tls.key" -out "$config/tls.crt"
fi
chgrp www-data "$config"/*; chmod 640 "$config"/*

id neural-cleanse >/dev/null 2>&1 || useradd --system --home-dir /var/lib/neural-cleanse neural-cleanse
install -d -m 750 -o neural-cleanse -g neural-cleanse /var/lib/neural-cleanse

sed "s#/opt/neural-cleanse#$checkout#g" "$checkout/deploy/systemd/neural-cleanse.service" \
    >/etc/systemd/system/neural-cleanse.service
install -m 644 "$checkout/deploy/nginx/neural-cleanse.conf" /etc/nginx/sites-available/neural-cleanse
ln -sf /etc/nginx/sites-available/neural-cleanse /etc/nginx/sites-enabled/neural-cleanse
rm -f /etc/nginx/sites-enabled/default

nginx -t
systemctl daemon-reload
systemctl enable --now neural-cleanse
systemctl reload-or-restart nginx
echo "The dashboard is at https://$(hostname -f)/ (user $user)."
