#!/bin/sh
# Reads its input, says something on both streams (one line not UTF-8) and fails.
cat > /dev/null
echo "to stdout"
printf 'bad \377 byte\n' >&2
exit 99
