# mxray — the two commands of the README:
#   go run ./cmd/mxray ...   runs the product (or: make build, then ./bin/mxray)
#   make test                installs every test dependency and runs the whole suite
GO ?= go

.PHONY: build test deps vet fmt-check bench

build:
	$(GO) build -o bin/mxray ./cmd/mxray

deps:
	./scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: deps fmt-check vet
	$(GO) test -p 2 -timeout 25m ./...

# Benchmarks against slow peers stay out of `make test`.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
