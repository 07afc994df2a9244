# Real Trino for `make athena-check`: fetched once from Maven Central into .trino/ (ignored).
# 476 is the newest io.trino:trino-server release Maven Central serves here; it needs JDK 24+
# (the machine's Temurin 25). Kept in step with TRINO_VERSION in dev/athena_check/trino_server.py.
TRINO_VERSION := 476
TRINO_DIR := .trino
TRINO_TARBALL := $(TRINO_DIR)/trino-server-$(TRINO_VERSION).tar.gz
TRINO_STAMP := $(TRINO_DIR)/trino-server-$(TRINO_VERSION)/.stamp

.PHONY: trino-fetch

$(TRINO_TARBALL):
	mkdir -p $(TRINO_DIR)
	mvn -q -B dependency:copy -Dartifact=io.trino:trino-server:$(TRINO_VERSION):tar.gz -DoutputDirectory=$(TRINO_DIR)

# The tarball stores shared plugin jars as hard links, so it is unpacked whole.
$(TRINO_STAMP): $(TRINO_TARBALL)
	rm -rf $(TRINO_DIR)/trino-server-$(TRINO_VERSION)
	tar -xzf $(TRINO_TARBALL) -C $(TRINO_DIR)
	touch $@

trino-fetch: $(TRINO_STAMP) ## fetch the pinned Trino server once into .trino/ (about 800 MB)
