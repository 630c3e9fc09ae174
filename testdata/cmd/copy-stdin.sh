#!/bin/sh
# Copies the event on standard input to $COMET_TEST_OUT and the handler's
# environment variables to $COMET_TEST_OUT.env.
cat > "$COMET_TEST_OUT"
{
	echo "COMET_IVORN=$COMET_IVORN"
	echo "COMET_ROLE=$COMET_ROLE"
	echo "COMET_SIGNATURE=$COMET_SIGNATURE"
	echo "COMET_SIGNER=$COMET_SIGNER"
	echo "INHERITED=$COMET_TEST_INHERITED"
} > "$COMET_TEST_OUT.env"
