#!/bin/sh
# check-drift.sh -- make check: the directive table, the man page and the example agree.
#
# Every directive in the table of src/conf/conf_keys.c (plus include, which the
# parser handles) must be a heading in the DIRECTIVES section of
# docs/mcpgate.conf.5 (a ".B name" or ".BI name" line right after .TP or .TQ) and
# be shown in etc/mcpgate.conf (a line starting with "name" or "# name", indented
# or not); and every such heading must name a directive of the table.
set -u
src="${srcdir:-.}"
keys="$src/src/conf/conf_keys.c"
man="$src/docs/mcpgate.conf.5"
etc="$src/etc/mcpgate.conf"
bad=0

names=$(sed -n '/DIRECTIVES BEGIN/,/DIRECTIVES END/p' "$keys" |
    sed -n 's/^[[:space:]]*{"\([a-z_]*\)".*/\1/p')
if [ -z "$names" ]; then
    echo "not ok 1 - no directive names found in $keys"
    exit 1
fi
names="$names include"
# the headings of the DIRECTIVES section: the line after each .TP or .TQ
headings=$(awk '/^\.SH /{ind = ($2 == "DIRECTIVES")}
        ind && (prev == ".TP" || prev == ".TQ") && /^\.BI? / {print $2} {prev = $0}' "$man" |
        tr -d '"')
for d in $names; do
    case " $(echo $headings) " in
    *" $d "*) ;;
    *) echo "# $d: not documented in docs/mcpgate.conf.5"; bad=1 ;;
    esac
    if ! grep -Eq "^[[:space:]]*(#[[:space:]]*)?$d( |;|\$)" "$etc"; then
        echo "# $d: not shown in etc/mcpgate.conf"
        bad=1
    fi
done
# the other way: a documented directive the table does not know
for d in $headings; do
    case " $(echo $names) " in
    *" $d "*) ;;
    *) echo "# $d: documented in docs/mcpgate.conf.5 but not in the table"; bad=1 ;;
    esac
done
if [ "$bad" -eq 0 ]; then
    echo "ok 1 - directives, man page and example config agree"
else
    echo "not ok 1 - directives, man page and example config agree"
fi
echo "1..1"
exit "$bad"
