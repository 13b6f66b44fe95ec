#!/bin/sh
# A self-signed certificate for trying the stack locally (browsers will warn). In
# production put the real certificate and key here as cert.pem and key.pem.
set -eu
cd "$(dirname "$0")"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost \
  -keyout key.pem -out cert.pem
chmod 600 key.pem
echo "wrote $(pwd)/cert.pem and key.pem"
