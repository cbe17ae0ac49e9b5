#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `zmeshctl ca init`: writes a loadable dev CA (key 0600, root with the trust domain as its
# subject O), prints it with -j, refuses to overwrite an existing key, and names the
# directory when it cannot be written. No namespaces or BPF: only files under a temp dir.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
BUILD=${BUILD:-build}
CTL=$BUILD/bin/zmeshctl
[ -x "$CTL" ] || t_fatal "$CTL not built (run make)"
tmp=$(mktemp -d /tmp/zm-ca-init-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

out=$("$CTL" -j ca init --dir "$tmp/ca" --trust-domain example.org)
t_is "$?" 0 "ca init exits 0"
t_is "$(printf '%s' "$out" | jq -r .trust_domain)" \
	example.org "-j output names the trust domain"
t_is "$(stat -c %a "$tmp/ca/ca-key.pem")" 600 "ca-key.pem is mode 0600"
t_like "$(openssl x509 -in "$tmp/ca/ca-cert.pem" -noout -subject)" 'O ?= ?example.org' \
	"root subject carries the trust domain"
t_like "$(openssl x509 -in "$tmp/ca/ca-cert.pem" -noout -text)" 'prime256v1|P-256' \
	"root key is ECDSA P-256"
t_run "key matches the root" -- bash -c "[ \"\$(openssl pkey -in '$tmp/ca/ca-key.pem' -pubout)\" = \
	\"\$(openssl x509 -in '$tmp/ca/ca-cert.pem' -noout -pubkey)\" ]"

out=$("$CTL" -j ca init --dir "$tmp/ca" 2>&1)
t_is "$?" 1 "second ca init exits 1"
t_like "$out" '"error":.*already exists' "and says the key already exists"

touch "$tmp/file"
out=$("$CTL" ca init --dir "$tmp/file/sub" 2>&1)
t_is "$?" 1 "ca init into an unwritable path exits 1"
t_like "$out" "$tmp/file/sub.*Not a directory" "error names the directory and the cause"

out=$("$CTL" ca init 2>&1)
t_is "$?" 2 "ca init without --dir is a usage error"
out=$("$CTL" -j ca init --dir "$tmp/ca2" --trust-domain 'Bad,Domain' 2>&1)
t_is "$?" 1 "invalid trust domain exits 1"
t_like "$out" 'invalid trust domain' "and says so"
t_done
