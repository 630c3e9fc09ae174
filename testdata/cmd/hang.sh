#!/bin/sh
# Starts a child that would outlive any test, records its pid in
# $COMET_TEST_OUT, and waits for it: only killing the process group ends both.
sleep 60 &
echo $! > "$COMET_TEST_OUT"
wait
