# flowvault - one GNU Makefile.
#
#   make            build build/flowvault, the generator, the unit tests and
#                   the web UI (build/ui, when npm is there; docs/ui.md)
#   make deps       apt-get install the Debian packages below when missing
#   make run        build, import sample traffic into ./demo-store, show it
#   make test       unit + integration tests, the ASan/UBSan build, fuzz replay
#   make bench      performance figures against tcpdump (tools/bench)
#   make fuzz       long libFuzzer runs (FUZZ_SECONDS each)
#   make SANITIZE=address,undefined   a sanitizer build in build-san/

DEB_PACKAGES := build-essential pkg-config clang clang-format liburing-dev liblmdb-dev \
	lmdb-utils libzstd-dev libpcap-dev libmicrohttpd-dev libjansson-dev \
	libdpdk-dev tshark tcpdump tcpreplay python3 iproute2 curl time fio stenographer jq \
	libgnutls28-dev openssl nfdump wrk

# The web UI's build (npm) and its browser test (chromium), from Debian
# only when not there already: a NodeSource nodejs brings its own npm,
# which Debian's npm package would conflict with.
DEB_PACKAGES += $(if $(shell command -v npm 2>/dev/null),,nodejs npm)
DEB_PACKAGES += $(if $(wildcard /usr/bin/chromium),,chromium)

PKGS := liburing lmdb libzstd libpcap jansson libmicrohttpd gnutls

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

ifneq ($(SANITIZE),)
BUILD ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

OPT ?= -O2 -g
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -D_GNU_SOURCE -I.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(CFLAGS_BASE) $(OPT) $(SANFLAGS) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lpthread -lm

MODULES := common capture storage index api
LIB_SRCS := $(filter-out api/main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/api/main.o
LIB := $(BUILD)/libflowvault.a
BIN := $(BUILD)/flowvault

TOOL_SRCS := $(wildcard tools/*.c)
TOOLS := $(TOOL_SRCS:tools/%.c=$(BUILD)/%)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 60

.PHONY: all deps run test test-only bench fuzz fuzz-build clean format-check
.SECONDARY:

all: $(BIN) $(TOOLS) $(UNIT_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%: $(BUILD)/obj/tools/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The DPDK backend is a plugin, $(BUILD)/flowvault-dpdk.so, that
# capture/source.c dlopen()s from the executable's directory on
# --backend dpdk only: linked into flowvault, libdpdk's constructors would
# slow every start. Built where pkg-config knows libdpdk; only dpdk.c goes
# in (DPDK headers as system headers, so -Werror judges our code only).
DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
ifneq ($(DPDK_CFLAGS),)
DPDK_SO := $(BUILD)/flowvault-dpdk.so
all: $(DPDK_SO)
$(DPDK_SO): capture/dpdk/dpdk.c
	@mkdir -p $(BUILD)/obj/capture/dpdk
	$(CC) $(ALL_CFLAGS) $(patsubst -I%,-isystem %,$(DPDK_CFLAGS)) -fPIC \
		-fvisibility=hidden -MMD -MP -MF $(BUILD)/obj/capture/dpdk/dpdk.d \
		-shared -Wl,--no-undefined $(ALL_LDFLAGS) -o $@ $< \
		$(shell pkg-config --libs libdpdk) -lpcap
endif

# The web UI (ui/, docs/ui.md): npm ci from ui/package-lock.json (the npm
# registry only), then Vite builds it into $(BUILD)/ui, which flowvault
# serve finds beside the program. Built whenever npm is there, and a
# failed UI build fails make; without npm it is skipped, and said so.
NPM := $(shell command -v npm 2>/dev/null)
UI_SRCS := $(wildcard ui/index.html ui/vite.config.js ui/src/* ui/public/*)
ifneq ($(NPM),)
all: $(BUILD)/ui/index.html
ui/node_modules/.fv-npm-ci: ui/package.json ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
	touch $@
$(BUILD)/ui/index.html: ui/node_modules/.fv-npm-ci $(UI_SRCS)
	cd ui && ./node_modules/.bin/vite build --logLevel warn --emptyOutDir \
		--outDir $(abspath $(BUILD)/ui)
else
all: ui-skipped
ui-skipped:
	@echo "make: npm not found, so the web UI is not built (make deps installs nodejs and npm; docs/ui.md)" >&2
.PHONY: ui-skipped
endif

# Fuzz harnesses: clang + libFuzzer + ASan/UBSan, linked with the library
# built the same way (through an archive, so only what a harness uses).
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=gnu11 -g -O1 -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_OBJS := $(LIB_SRCS:%.c=build-fuzz/obj/%.o)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build-fuzz/libflowvault.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libflowvault.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libflowvault.a $(LIBS)

-include $(shell find build-fuzz/obj -name '*.d' 2>/dev/null)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	  echo "== $$n ($(FUZZ_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

# Installs the Debian packages the build and the tests use, when missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root, or install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: deps
	$(MAKE) all
	tools/run-demo.sh $(BUILD)

test: deps
	$(MAKE) all
	$(MAKE) SANITIZE=address,undefined all
	$(MAKE) fuzz-build
	tests/run.sh

test-only:
	tests/run.sh

bench: deps
	$(MAKE) all
	tools/bench/run.sh $(BUILD)

format-check:
	clang-format --dry-run --Werror $(LIB_SRCS) api/main.c $(wildcard */*.h) $(TOOL_SRCS) $(UNIT_SRCS) $(FUZZ_SRCS) $(wildcard capture/dpdk/*.c)

clean:
	rm -rf build build-san build-fuzz build-me ui/dist
