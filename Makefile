# swift-rcu: the two commands a fresh machine needs are `make stress` and `make test`.
SWIFT ?= swift
STRESS_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build release stress test test-tsan test-asan test-release ci bench lockdep-cost clean

# liburcu (Debian's liburcu-dev) is the one system dependency; pkg-config finds it.
deps:
	@pkg-config --exists liburcu 2>/dev/null || { \
		echo "liburcu not found: installing liburcu-dev with apt-get"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liburcu-dev pkg-config; }

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The main job: a release build and the default stress benchmark.
stress: release
	$(SWIFT) run -c release rcu-stress $(STRESS_ARGS)

test: deps
	$(SWIFT) test

# ThreadSanitizer and AddressSanitizer runs of the whole suite (separate build folders).
test-tsan: deps
	TSAN_OPTIONS="suppressions=$(CURDIR)/Tests/tsan-suppressions.txt $$TSAN_OPTIONS" $(SWIFT) test --sanitize=thread --scratch-path .build-tsan

test-asan: deps
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --sanitize=address --scratch-path .build-asan

# The whole suite in a release build (its own build folder), Lockdep's checks compiled out:
# the tests that need them skip. Not part of `ci` or .ci/run (their time budget).
test-release: deps
	$(SWIFT) test -c release --scratch-path .build-reltest

ci: test test-tsan test-asan

# What Lockdep's checks cost (issue 14's lock-pair and registry ratios), plain and checked
# release builds alternated, every run printed: `make lockdep-cost ROUNDS=20`.
ROUNDS ?= 10
lockdep-cost: deps
	scripts/lockdep-cost.sh $(ROUNDS)

clean:
	rm -rf .build .build-tsan .build-asan .build-lockdep .build-reltest
