#!/bin/sh
# eclor-edge gateway image, first boot (eclor-edge-firstboot.service). Reads the boot partition:
#   eclor-edge/bundle.yaml          the provisioning bundle → /etc/eclor-edge, enrol, then the
#                                   bundle (with its secrets) is deleted from the boot partition
#   eclor-edge/network              optional systemd.network(5) file replacing the DHCP default
#   eclor-edge/wifi                 optional wpa_supplicant.conf for wlan0
#   eclor-edge/ssh_authorized_keys  optional: turns SSH on, key logins only
# Without a bundle the box waits ("waiting for a bundle", on the console, in /run/issue.d and
# in `eclor-edge status`); eclor-edge-firstboot.path starts this again when one appears.
set -eu
BOOT=${ECLOR_BOOT_DIR:-/boot/firmware}/eclor-edge
CONF_DIR=/etc/eclor-edge
STATE=/var/lib/eclor-edge
WAIT=/run/eclor-edge/waiting-for-bundle
ISSUE=/run/issue.d/50-eclor-edge.issue

say() {
  echo "eclor-edge-firstboot: $*"
  if [ -w /dev/console ]; then echo "eclor-edge: $*" >/dev/console 2>/dev/null || true; fi
}

# The installer's switches, applied on every boot (a key can be added later the same way).
if [ -s "$BOOT/ssh_authorized_keys" ]; then
  install -d -m 0700 /root/.ssh
  install -m 0600 "$BOOT/ssh_authorized_keys" /root/.ssh/authorized_keys
  ssh-keygen -A >/dev/null
  systemctl enable --now ssh.service >/dev/null 2>&1 || say "could not start SSH"
  say "SSH is on (key logins only), keys from the boot partition"
fi
if [ -f "$BOOT/network" ]; then
  install -m 0644 "$BOOT/network" /etc/systemd/network/10-eclor-boot.network
  networkctl reload >/dev/null 2>&1 || true
fi
if [ -f "$BOOT/wifi" ]; then
  install -m 0600 "$BOOT/wifi" /etc/wpa_supplicant/wpa_supplicant-wlan0.conf
  systemctl enable --now wpa_supplicant@wlan0.service >/dev/null 2>&1 || say "could not start Wi-Fi"
fi

if [ -e "$STATE/provision/cert.pem" ]; then
  rm -f "$WAIT" "$ISSUE"
  exit 0 # enrolled: a second boot never enrols again
fi

if [ ! -f "$BOOT/bundle.yaml" ] && [ ! -f "$CONF_DIR/bundle.yaml" ]; then
  msg="waiting for a provisioning bundle: copy bundle.yaml into the eclor-edge folder of the ECLOR-BOOT partition (it is picked up at once, or at the next power-on)"
  install -d -m 0755 /run/eclor-edge /run/issue.d
  echo "$msg" >"$WAIT"
  printf '\neclor-edge: %s\n\n' "$msg" >"$ISSUE"
  say "$msg"
  exit 0
fi

if [ -f "$BOOT/bundle.yaml" ]; then
  install -m 0640 -o root -g eclor-edge "$BOOT/bundle.yaml" "$CONF_DIR/bundle.yaml.new"
  mv -f "$CONF_DIR/bundle.yaml.new" "$CONF_DIR/bundle.yaml"
  sync
fi
if ! gateway=$(eclor-edge provision --bundle "$CONF_DIR/bundle.yaml" --check --json |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).gateway))'); then
  say "the bundle on the boot partition is not valid (see: journalctl -u eclor-edge-firstboot); put a new one"
  rm -f "$CONF_DIR/bundle.yaml"
  exit 2
fi
rm -f "$BOOT/bundle.yaml" # its secrets now live only in /etc/eclor-edge (0640 root:eclor-edge)
say "enrolling as $gateway"
hostnamectl set-hostname "$gateway" 2>/dev/null || { echo "$gateway" >/etc/hostname; hostname "$gateway"; }

# The package's example config is replaced by the one the platform sends with the certificate.
if cmp -s "$CONF_DIR/config.yaml" /usr/lib/eclor-edge/config.example.yaml; then
  rm -f "$CONF_DIR/config.yaml"
fi
eclor-edge provision --bundle "$CONF_DIR/bundle.yaml" --config-out "$CONF_DIR/config.yaml" \
  --attempts 20 --timeout 60s
chown root:eclor-edge "$CONF_DIR/config.yaml" && chmod 0640 "$CONF_DIR/config.yaml"
printf 'enrolled as %s on %s; the bundle was moved into /etc/eclor-edge and deleted here.\n' \
  "$gateway" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$BOOT/enrolled.txt" 2>/dev/null || true
rm -f "$WAIT" "$ISSUE"
systemctl enable eclor-edge.service >/dev/null 2>&1
systemctl start --no-block eclor-edge.service
say "enrolled as $gateway; the agent is starting"
