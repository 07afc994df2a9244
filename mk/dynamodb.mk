# Delta's DynamoDB-backed S3 log store, compiled from the vendored 3.3.2 sources (jvm/s3-dynamodb).
DDB_JAR := jvm/jars/delta-storage-s3-dynamodb-3.3.2.jar
DDB_SRC := $(shell find jvm/s3-dynamodb/src -name '*.java')
PYSPARK_JARS = $(shell $(PY) -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
.PHONY: dynamodb-logstore

$(DDB_JAR): $(DDB_SRC) $(JARS_STAMP) $(VENV_STAMP)
	rm -rf build/ddb-classes && mkdir -p build/ddb-classes
	javac -nowarn --release 8 -d build/ddb-classes -cp "jvm/jars/*:$(PYSPARK_JARS)/*" $(DDB_SRC)
	jar cf $@ -C build/ddb-classes .

dynamodb-logstore: $(DDB_JAR) ## build Delta's S3 DynamoDB log store jar into jvm/jars (part of setup)

setup: $(DDB_JAR)
