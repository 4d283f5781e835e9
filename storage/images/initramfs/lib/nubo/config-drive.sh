# Config drive readers of Nubo's Tiny Linux (sourced by /etc/init.d/rcS; plain busybox sh + awk).
# shellcheck shell=sh disable=SC2034,SC2154  # sets variables for, and reads ssh_keys from, the caller
#
#   read_openstack DIR   OpenStack layout (label config-2): DIR/openstack/latest/meta_data.json with
#                        hostname, admin_pass, public_keys {name: key} or keys [{data: key}]; also
#                        CloudStack's DIR/cloudstack/password/vm_password.txt for the password
#   read_nocloud DIR     NoCloud (label cidata): DIR/meta-data local-hostname; DIR/user-data
#                        (#cloud-config) hostname, password, ssh_authorized_keys
#
# Each sets new_hostname and new_password (empty when not given) and appends SSH public keys, one
# a line, to the file named by $ssh_keys.

json_awk="${json_awk:-/lib/nubo/json.awk}"

set_hostname() {
    # Keep what a host name may hold; at most 63 characters.
    new_hostname="$(printf '%s' "$1" | tr -cd 'A-Za-z0-9.-' | cut -c1-63)"
}

read_openstack() {
    new_hostname="" new_password=""
    meta="$1/openstack/latest/meta_data.json"
    if [ -f "$meta" ]; then
        flat="$(awk -f "$json_awk" "$meta" 2>/dev/null)"
        set_hostname "$(printf '%s\n' "$flat" | awk -F '\t' '$1 == "hostname" { print $2; exit }')"
        new_password="$(printf '%s\n' "$flat" | awk -F '\t' '$1 == "admin_pass" { print $2; exit }')"
        printf '%s\n' "$flat" | awk -F '\t' '$1 ~ /^public_keys\// || $1 ~ /^keys\/[0-9]+\/data$/ { print $2 }' \
            >>"$ssh_keys"
    fi
    if [ -z "$new_password" ] && [ -f "$1/cloudstack/password/vm_password.txt" ]; then
        new_password="$(head -n 1 "$1/cloudstack/password/vm_password.txt")"
    fi
}

# YAML, only as far as cloud-init's simplest forms go: "key: value" at the start of a line, the
# value optionally quoted; a list of "- item" lines under ssh_authorized_keys:.
yaml_value() { # yaml_value KEY_REGEX FILE
    awk -v key="^($1):" '$0 ~ key {
        v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
        if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) v = substr(v, 2, length(v) - 2)
        print v; exit }' "$2"
}

read_nocloud() {
    new_hostname="" new_password=""
    [ -f "$1/meta-data" ] && set_hostname "$(yaml_value 'local-hostname|hostname' "$1/meta-data")"
    data="$1/user-data"
    [ -f "$data" ] || return 0
    name="$(yaml_value hostname "$data")"
    [ -n "$name" ] && set_hostname "$name"
    new_password="$(yaml_value password "$data")"
    awk '/^ssh_authorized_keys:/ { inside = 1; next }
         inside && /^[ \t]*-/ { v = $0; sub(/^[ \t]*-[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
                                 if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) v = substr(v, 2, length(v) - 2)
                                 print v; next }
         inside && /^[^ \t#]/ { inside = 0 }' "$data" >>"$ssh_keys"
}
