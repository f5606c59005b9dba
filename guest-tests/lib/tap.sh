# TAP for the shell test scripts (sourced):
#   ok STATUS DESCRIPTION      one assertion: "ok N - ..." if STATUS is 0
#   tap_relay PREFIX TEXT      TEXT's own "ok"/"not ok" lines become ours
#                              (descriptions prefixed with PREFIX), every
#                              other line a "# " diagnostic
# $n counts assertions, $failed the failed ones.
n=0 failed=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
tap_relay() {
	local line desc
	echo "$2" | grep -Ev '^(not )?ok [0-9]+ - ' | sed 's/^/# /'
	while read -r line; do
		desc=$(echo "$line" | sed -E 's/^(not )?ok [0-9]+ - //')
		case $line in not*) ok 1 "$1$desc" ;; ok*) ok 0 "$1$desc" ;; esac
	done < <(echo "$2" | grep -E '^(not )?ok [0-9]+ - ')
}
