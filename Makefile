# hull: `make setup` prepares a machine and builds, `make test` runs every check CI runs.
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO ?= go

.PHONY: all build setup run test lint unit conformance

all: build

build:
	mkdir -p bin
	$(GO) build -o bin/ ./cmd/...

setup:
	bash hack/setup.sh

# run: start hulld on the default socket in the foreground (see README).
run: build
	bin/hulld

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

unit:
	$(GO) test -count=1 -p 2 -timeout 40m ./...

# conformance: critest (mirror mode) against a private hulld; only the offline-impossible digest test may fail.
conformance: build
	bash hack/conformance.sh

test: build lint unit conformance
