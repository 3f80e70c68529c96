#!/usr/bin/env bash
# Regenerates the API's Go code (api/gen) and OpenAPI document
# (api/openapi) from api/proto with buf and pinned local plugins.
#
#   api/generate.sh          regenerate in place
#   api/generate.sh --check  lint the protos, regenerate into a temporary
#                            directory and fail if it differs from what is
#                            committed
#
# The buf schema registry is not used: the plugins are built from the Go
# module proxy at the versions below into api/.bin (ignored by git), and
# buf bundles the well-known types.
set -euo pipefail

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12     # = google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2  # SupportPackageIsVersion9: grpc >= 1.64
GRPC_GATEWAY_VERSION=v2.33.0       # = grpc-gateway/v2 in go.mod

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$root/api/.bin

install() {
	GOBIN=$bin GOFLAGS=-buildvcs=false go install "$@"
}
install github.com/bufbuild/buf/cmd/buf@$BUF_VERSION
install google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION
install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION
install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$GRPC_GATEWAY_VERSION \
	github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$GRPC_GATEWAY_VERSION
export PATH=$bin:$PATH

case "${1:-}" in
"")
	buf lint
	rm -rf api/gen api/openapi
	buf generate
	;;
--check)
	buf lint
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	buf generate -o "$tmp"
	status=0
	for dir in api/gen api/openapi; do
		if ! diff -r "$dir" "$tmp/$dir"; then
			status=1
		fi
	done
	if [ "$status" -ne 0 ]; then
		echo "api/generate.sh --check: generated code is stale; run api/generate.sh and commit the result" >&2
		exit 1
	fi
	echo "api/generate.sh --check: generated code is up to date"
	;;
*)
	echo "usage: api/generate.sh [--check]" >&2
	exit 2
	;;
esac
