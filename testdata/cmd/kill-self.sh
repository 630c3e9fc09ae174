#!/bin/sh
# Dies by a signal, so it has no exit status.
cat > /dev/null
kill -9 $$
