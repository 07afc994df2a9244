package dev.auditlake.delta;

import com.amazonaws.ClientConfiguration;
import com.amazonaws.SdkClientException;
import com.amazonaws.auth.AWSCredentialsProvider;
import com.amazonaws.auth.DefaultAWSCredentialsProviderChain;
import com.amazonaws.client.builder.AwsClientBuilder.EndpointConfiguration;
import com.amazonaws.services.dynamodbv2.AmazonDynamoDB;
import com.amazonaws.services.dynamodbv2.AmazonDynamoDBClientBuilder;
import com.amazonaws.services.dynamodbv2.model.AttributeDefinition;
import com.amazonaws.services.dynamodbv2.model.AttributeValue;
import com.amazonaws.services.dynamodbv2.model.BillingMode;
import com.amazonaws.services.dynamodbv2.model.ConditionalCheckFailedException;
import com.amazonaws.services.dynamodbv2.model.CreateTableRequest;
import com.amazonaws.services.dynamodbv2.model.DescribeTableRequest;
import com.amazonaws.services.dynamodbv2.model.GetItemRequest;
import com.amazonaws.services.dynamodbv2.model.KeySchemaElement;
import com.amazonaws.services.dynamodbv2.model.KeyType;
import com.amazonaws.services.dynamodbv2.model.PutItemRequest;
import com.amazonaws.services.dynamodbv2.model.QueryRequest;
import com.amazonaws.services.dynamodbv2.model.QueryResult;
import com.amazonaws.services.dynamodbv2.model.ResourceInUseException;
import com.amazonaws.services.dynamodbv2.model.ResourceNotFoundException;
import com.amazonaws.services.dynamodbv2.model.ScalarAttributeType;
import com.amazonaws.services.dynamodbv2.model.TimeToLiveSpecification;
import com.amazonaws.services.dynamodbv2.model.UpdateItemRequest;
import com.amazonaws.services.dynamodbv2.model.UpdateTimeToLiveRequest;
import io.delta.storage.HadoopFileSystemLogStore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Delta log store for S3 that is safe for several concurrent writers (clusters, JVMs).
 *
 * <p>S3 has no put-if-absent, so two writers committing version N of one table can both "succeed"
 * and one commit is lost. This store claims every commit file {@code _delta_log/N.json} first with a
 * conditional put in a DynamoDB table (keys {@code tablePath} HASH, {@code fileName} RANGE, the
 * layout Delta documents for its own S3 multi-cluster store):
 *
 * <ol>
 *   <li>if {@code N.json} exists: {@link FileAlreadyExistsException};
 *   <li>version N-1's entry, if incomplete, is recovered first;
 *   <li>the actions go to a temp file {@code _delta_log/.tmp/N.json.<uuid>};
 *   <li>PutItem {tablePath, fileName=N.json, tempPath, complete=false} if {@code fileName} does not
 *       exist; a failed condition means another writer holds N: {@link FileAlreadyExistsException},
 *       which makes Delta check for conflicts and retry at N+1;
 *   <li>the temp file is copied to {@code N.json};
 *   <li>the entry is marked complete=true with {@code expireTime} (TTL) = now + ttlSeconds, and
 *       the temp file is deleted.
 * </ol>
 *
 * A writer that dies between 4 and 6 leaves an incomplete entry; the next writer of N+1 and every
 * {@link #listFrom} (Delta lists the log before it reads a snapshot) finishes it: copies the temp
 * file to {@code N.json} if it is missing and marks the entry complete.
 *
 * <p>Overwrites ({@code _last_checkpoint}) and files that are not commits (checksums) are written
 * straight to the file system without DynamoDB.
 *
 * <p>Hadoop configuration keys (Spark: {@code spark.hadoop.<key>}):
 *
 * <ul>
 *   <li>{@code auditlake.logstore.ddb.tableName} (required): created PAY_PER_REQUEST if absent;
 *   <li>{@code auditlake.logstore.ddb.region}: else the SDK's default region chain;
 *   <li>{@code auditlake.logstore.ddb.endpoint}: e.g. a loopback test server;
 *   <li>{@code auditlake.logstore.ddb.ttlSeconds}: completed entries' lifetime (default 86400);
 *   <li>{@code auditlake.logstore.ddb.credentialsProvider}: an {@link AWSCredentialsProvider} class
 *       (no-arg or {@link Configuration} constructor); else the SDK's default chain.
 * </ul>
 */
public class DynamoDBLogStore extends HadoopFileSystemLogStore {
  private static final Logger LOG = LoggerFactory.getLogger(DynamoDBLogStore.class);

  public static final String CONF_PREFIX = "auditlake.logstore.ddb.";
  public static final String TABLE_NAME = CONF_PREFIX + "tableName";
  public static final String REGION = CONF_PREFIX + "region";
  public static final String ENDPOINT = CONF_PREFIX + "endpoint";
  public static final String TTL_SECONDS = CONF_PREFIX + "ttlSeconds";
  public static final String CREDENTIALS_PROVIDER = CONF_PREFIX + "credentialsProvider";

  static final String ATTR_TABLE_PATH = "tablePath";
  static final String ATTR_FILE_NAME = "fileName";
  static final String ATTR_TEMP_PATH = "tempPath";
  static final String ATTR_COMPLETE = "complete";
  static final String ATTR_EXPIRE_TIME = "expireTime";

  private static final Pattern DELTA_FILE = Pattern.compile("\\d{20}\\.json");
  private static final String LOG_DIR = "_delta_log";
  private static final String TEMP_DIR = ".tmp";
  private static final long DEFAULT_TTL_SECONDS = 86400L;

  /** One client per endpoint/region/credentials, and the tables known to exist, per JVM. */
  private static final Map<String, AmazonDynamoDB> CLIENTS = new ConcurrentHashMap<>();

  private static final Set<String> READY_TABLES = ConcurrentHashMap.newKeySet();

  private final String tableName;
  private final long ttlSeconds;
  private final AmazonDynamoDB client;

  public DynamoDBLogStore(Configuration hadoopConf) throws IOException {
    super(hadoopConf);
    String table = trimToNull(hadoopConf.get(TABLE_NAME));
    if (table == null) {
      throw new IllegalArgumentException(
          "DynamoDBLogStore: "
              + TABLE_NAME
              + " is not set (Spark: spark.hadoop."
              + TABLE_NAME
              + "); it names the DynamoDB table that holds the Delta commit claims");
    }
    this.tableName = table;
    String ttl = trimToNull(hadoopConf.get(TTL_SECONDS));
    try {
      this.ttlSeconds = ttl == null ? DEFAULT_TTL_SECONDS : Long.parseLong(ttl);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "DynamoDBLogStore: " + TTL_SECONDS + " must be a whole number of seconds, not " + ttl);
    }
    String region = trimToNull(hadoopConf.get(REGION));
    String endpoint = trimToNull(hadoopConf.get(ENDPOINT));
    String provider = trimToNull(hadoopConf.get(CREDENTIALS_PROVIDER));
    String key = endpoint + "|" + region + "|" + provider;
    this.client = CLIENTS.computeIfAbsent(key, k -> buildClient(hadoopConf, region, endpoint, provider));
    if (READY_TABLES.add(key + "|" + tableName)) {
      try {
        ensureTable();
      } catch (RuntimeException | IOException e) {
        READY_TABLES.remove(key + "|" + tableName);
        throw e;
      }
    }
  }

  // ---------------------------------------------------------------- LogStore

  @Override
  public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf)
      throws IOException {
    FileSystem fs = path.getFileSystem(hadoopConf);
    Path resolved = fs.makeQualified(path);
    if (overwrite || !isDeltaFile(resolved)) {
      writeDirect(fs, resolved, actions, overwrite);
      return;
    }
    if (fs.exists(resolved)) {
      throw new FileAlreadyExistsException(resolved.toString());
    }
    Path logDir = resolved.getParent();
    String tablePath = tableKey(logDir);
    String fileName = resolved.getName();
    long version = Long.parseLong(fileName.substring(0, 20));
    if (version > 0) {
      String previous = String.format("%020d.json", version - 1);
      Map<String, AttributeValue> prev = getEntry(tablePath, previous);
      if (prev != null && !isComplete(prev)) {
        recover(fs, logDir, prev);
      }
    }

    byte[] content = serialize(actions);
    String tempRelative = TEMP_DIR + "/" + fileName + "." + UUID.randomUUID();
    Path temp = new Path(logDir, tempRelative);
    writeBytes(fs, temp, content, false);

    Map<String, AttributeValue> item = new HashMap<>();
    item.put(ATTR_TABLE_PATH, new AttributeValue(tablePath));
    item.put(ATTR_FILE_NAME, new AttributeValue(fileName));
    item.put(ATTR_TEMP_PATH, new AttributeValue(tempRelative));
    item.put(ATTR_COMPLETE, new AttributeValue("false"));
    try {
      client.putItem(
          new PutItemRequest()
              .withTableName(tableName)
              .withItem(item)
              .withConditionExpression("attribute_not_exists(" + ATTR_FILE_NAME + ")"));
    } catch (ConditionalCheckFailedException e) {
      // The SDK retries a PutItem whose answer was lost; the retry then fails on our own item.
      Map<String, AttributeValue> holder = getEntry(tablePath, fileName);
      AttributeValue holderTemp = holder == null ? null : holder.get(ATTR_TEMP_PATH);
      if (holderTemp == null || !tempRelative.equals(holderTemp.getS())) {
        deleteQuietly(fs, temp);
        throw new FileAlreadyExistsException(
            resolved.toString(), null, "another writer claimed it in DynamoDB table " + tableName);
      }
    } catch (SdkClientException e) {
      // The put may have landed all the same: keep the temp file, a reader then finishes the commit.
      throw new IOException("DynamoDB PutItem for " + resolved + " failed: " + e.getMessage(), e);
    }

    // Claimed: from here on a failure leaves an incomplete entry that the next writer or reader
    // finishes, so the commit may land even if this call throws (as with any lost acknowledgement).
    writeBytes(fs, resolved, content, true);
    if (markComplete(tablePath, fileName, true)) {
      // Complete: nobody needs the temp file any more (a recoverer that still reads it finds N.json).
      deleteQuietly(fs, temp);
    }
  }

  @Override
  public Iterator<FileStatus> listFrom(Path path, Configuration hadoopConf) throws IOException {
    FileSystem fs = path.getFileSystem(hadoopConf);
    Path resolved = fs.makeQualified(path);
    Path logDir = resolved.getParent();
    if (logDir != null && LOG_DIR.equals(logDir.getName())) {
      recoverLatest(fs, logDir);
    }
    return super.listFrom(path, hadoopConf);
  }

  @Override
  public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
    return false;
  }

  // ---------------------------------------------------------------- protocol

  /** Finishes the table's latest entry if its writer did not. */
  private void recoverLatest(FileSystem fs, Path logDir) throws IOException {
    String tablePath = tableKey(logDir);
    QueryResult result;
    try {
      result =
          client.query(
              new QueryRequest()
                  .withTableName(tableName)
                  .withConsistentRead(true)
                  .withKeyConditionExpression(ATTR_TABLE_PATH + " = :t")
                  .withExpressionAttributeValues(
                      Collections.singletonMap(":t", new AttributeValue(tablePath)))
                  .withScanIndexForward(false)
                  .withLimit(1));
    } catch (SdkClientException e) {
      throw new IOException("DynamoDB Query for " + tablePath + " failed: " + e.getMessage(), e);
    }
    List<Map<String, AttributeValue>> items = result.getItems();
    if (items != null && !items.isEmpty() && !isComplete(items.get(0))) {
      recover(fs, logDir, items.get(0));
    }
  }

  /** Copies an incomplete entry's temp file to its commit file if that is missing, then marks it complete. */
  private void recover(FileSystem fs, Path logDir, Map<String, AttributeValue> entry)
      throws IOException {
    String fileName = entry.get(ATTR_FILE_NAME).getS();
    Path target = new Path(logDir, fileName);
    AttributeValue tempAttr = entry.get(ATTR_TEMP_PATH);
    Path temp = tempAttr == null || tempAttr.getS() == null ? null : new Path(logDir, tempAttr.getS());
    if (!fs.exists(target)) {
      if (temp == null) {
        throw new IOException(
            "DynamoDB entry for " + target + " is incomplete and has no " + ATTR_TEMP_PATH);
      }
      LOG.warn("Recovering Delta commit {} from {} (its writer did not finish)", target, temp);
      try {
        copy(fs, temp, target);
      } catch (IOException e) {
        // The writer (or another recoverer) may have finished meanwhile.
        if (!fs.exists(target)) {
          throw new IOException(
              "Cannot recover the incomplete Delta commit " + target + " from " + temp, e);
        }
      }
    }
    if (markComplete(entry.get(ATTR_TABLE_PATH).getS(), fileName, false) && temp != null) {
      deleteQuietly(fs, temp);
    }
  }

  private Map<String, AttributeValue> getEntry(String tablePath, String fileName)
      throws IOException {
    try {
      Map<String, AttributeValue> item =
          client
              .getItem(
                  new GetItemRequest()
                      .withTableName(tableName)
                      .withConsistentRead(true)
                      .withKey(key(tablePath, fileName)))
              .getItem();
      return item == null || item.isEmpty() ? null : item;
    } catch (SdkClientException e) {
      throw new IOException(
          "DynamoDB GetItem for " + tablePath + " " + fileName + " failed: " + e.getMessage(), e);
    }
  }

  /**
   * Marks an entry complete. The commit file exists by now, so a failure is only logged when we wrote
   * it ourselves (the entry stays incomplete and the next reader marks it): the commit did land.
   */
  private boolean markComplete(String tablePath, String fileName, boolean ownCommit)
      throws IOException {
    Map<String, AttributeValue> values = new HashMap<>();
    values.put(":c", new AttributeValue("true"));
    values.put(
        ":e",
        new AttributeValue().withN(Long.toString(System.currentTimeMillis() / 1000L + ttlSeconds)));
    try {
      client.updateItem(
          new UpdateItemRequest()
              .withTableName(tableName)
              .withKey(key(tablePath, fileName))
              .withUpdateExpression(
                  "SET " + ATTR_COMPLETE + " = :c, " + ATTR_EXPIRE_TIME + " = :e")
              .withConditionExpression("attribute_exists(" + ATTR_FILE_NAME + ")")
              .withExpressionAttributeValues(values));
      return true;
    } catch (ConditionalCheckFailedException e) {
      // The entry expired meanwhile: nothing to mark.
      return false;
    } catch (SdkClientException e) {
      if (ownCommit) {
        LOG.warn(
            "Delta commit {}/{} is written but marking it complete in DynamoDB failed; "
                + "the next reader will: {}",
            tablePath,
            fileName,
            e.toString());
        return false;
      } else {
        throw new IOException(
            "DynamoDB UpdateItem for " + tablePath + " " + fileName + " failed: " + e.getMessage(),
            e);
      }
    }
  }

  // ---------------------------------------------------------------- helpers

  static boolean isDeltaFile(Path path) {
    Path parent = path.getParent();
    return parent != null
        && LOG_DIR.equals(parent.getName())
        && DELTA_FILE.matcher(path.getName()).matches();
  }

  /** The table root (parent of _delta_log) as a URI; s3a/s3n are written s3 so all writers agree. */
  static String tableKey(Path logDir) {
    URI uri = logDir.getParent().toUri();
    String scheme = uri.getScheme();
    if ("s3a".equalsIgnoreCase(scheme) || "s3n".equalsIgnoreCase(scheme)) {
      scheme = "s3";
    }
    String p = uri.getPath();
    while (p != null && p.length() > 1 && p.endsWith("/")) {
      p = p.substring(0, p.length() - 1);
    }
    try {
      return new URI(scheme, uri.getAuthority(), p, null, null).toString();
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("Bad Delta table path " + logDir.getParent(), e);
    }
  }

  private static Map<String, AttributeValue> key(String tablePath, String fileName) {
    Map<String, AttributeValue> key = new HashMap<>();
    key.put(ATTR_TABLE_PATH, new AttributeValue(tablePath));
    key.put(ATTR_FILE_NAME, new AttributeValue(fileName));
    return key;
  }

  private static boolean isComplete(Map<String, AttributeValue> item) {
    AttributeValue c = item.get(ATTR_COMPLETE);
    return c != null && "true".equals(c.getS());
  }

  private static void writeDirect(
      FileSystem fs, Path path, Iterator<String> actions, boolean overwrite) throws IOException {
    writeBytes(fs, path, serialize(actions), overwrite);
  }

  /** One action a line, as Delta writes commits. */
  private static byte[] serialize(Iterator<String> actions) {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    while (actions.hasNext()) {
      byte[] line = (actions.next() + "\n").getBytes(StandardCharsets.UTF_8);
      buf.write(line, 0, line.length);
    }
    return buf.toByteArray();
  }

  /**
   * Writes bytes that are all in memory already, so a failure cannot leave a partial file behind
   * a stream that is closed anyway (on S3 the object appears whole when the stream closes).
   */
  private static void writeBytes(FileSystem fs, Path path, byte[] content, boolean overwrite)
      throws IOException {
    try (FSDataOutputStream out = fs.create(path, overwrite)) {
      out.write(content);
    } catch (org.apache.hadoop.fs.FileAlreadyExistsException e) {
      throw new FileAlreadyExistsException(path.toString());
    }
  }

  /** Reads the whole source before writing the target: a failed read writes nothing. */
  private static void copy(FileSystem fs, Path from, Path to) throws IOException {
    byte[] content;
    try (InputStream in = fs.open(from)) {
      content = in.readAllBytes();
    }
    writeBytes(fs, to, content, true);
  }

  private static void deleteQuietly(FileSystem fs, Path path) {
    try {
      fs.delete(path, false);
    } catch (IOException e) {
      LOG.debug("Could not delete {}: {}", path, e.toString());
    }
  }

  private static String trimToNull(String s) {
    if (s == null) {
      return null;
    }
    String t = s.trim();
    return t.isEmpty() ? null : t;
  }

  // ---------------------------------------------------------------- client and table

  private static AmazonDynamoDB buildClient(
      Configuration conf, String region, String endpoint, String providerClass) {
    AmazonDynamoDBClientBuilder builder =
        AmazonDynamoDBClientBuilder.standard()
            .withCredentials(credentials(conf, providerClass))
            .withClientConfiguration(new ClientConfiguration().withMaxErrorRetry(10));
    if (endpoint != null) {
      builder.withEndpointConfiguration(
          new EndpointConfiguration(endpoint, region == null ? "us-east-1" : region));
    } else if (region != null) {
      builder.withRegion(region);
    }
    try {
      return builder.build();
    } catch (SdkClientException e) {
      throw new IllegalArgumentException(
          "DynamoDBLogStore: cannot build the DynamoDB client (set "
              + REGION
              + " or AWS_REGION): "
              + e.getMessage(),
          e);
    }
  }

  private static AWSCredentialsProvider credentials(Configuration conf, String providerClass) {
    if (providerClass == null) {
      return DefaultAWSCredentialsProviderChain.getInstance();
    }
    try {
      Class<?> cls = Class.forName(providerClass, true, Thread.currentThread().getContextClassLoader());
      try {
        return (AWSCredentialsProvider) cls.getConstructor(Configuration.class).newInstance(conf);
      } catch (NoSuchMethodException e) {
        return (AWSCredentialsProvider) cls.getConstructor().newInstance();
      }
    } catch (ReflectiveOperationException | ClassCastException e) {
      throw new IllegalArgumentException(
          "DynamoDBLogStore: "
              + CREDENTIALS_PROVIDER
              + "="
              + providerClass
              + " is not an AWSCredentialsProvider with a no-arg or Configuration constructor",
          e);
    }
  }

  /** Creates the table if absent (PAY_PER_REQUEST, TTL on expireTime) and waits until ACTIVE. */
  private void ensureTable() throws IOException {
    String status;
    try {
      status = describeStatus();
    } catch (ResourceNotFoundException e) {
      LOG.info("Creating DynamoDB table {} for Delta commits", tableName);
      try {
        client.createTable(
            new CreateTableRequest()
                .withTableName(tableName)
                .withAttributeDefinitions(
                    new AttributeDefinition(ATTR_TABLE_PATH, ScalarAttributeType.S),
                    new AttributeDefinition(ATTR_FILE_NAME, ScalarAttributeType.S))
                .withKeySchema(
                    new KeySchemaElement(ATTR_TABLE_PATH, KeyType.HASH),
                    new KeySchemaElement(ATTR_FILE_NAME, KeyType.RANGE))
                .withBillingMode(BillingMode.PAY_PER_REQUEST));
      } catch (ResourceInUseException raced) {
        // another writer created it
      } catch (SdkClientException ce) {
        throw new IOException(
            "DynamoDBLogStore: cannot create DynamoDB table " + tableName + ": " + ce.getMessage(),
            ce);
      }
      waitActive(describeStatus());
      enableTtl();
      return;
    } catch (SdkClientException e) {
      throw new IOException(
          "DynamoDBLogStore: cannot describe DynamoDB table " + tableName + ": " + e.getMessage(),
          e);
    }
    waitActive(status);
  }

  private void waitActive(String status) throws IOException {
    long deadline = System.currentTimeMillis() + 120_000L;
    while (!"ACTIVE".equals(status)) {
      if (System.currentTimeMillis() > deadline) {
        throw new IOException(
            "DynamoDBLogStore: table " + tableName + " is " + status + ", not ACTIVE, after 120 s");
      }
      try {
        Thread.sleep(1000L);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted waiting for table " + tableName);
      }
      status = describeStatus();
    }
  }

  /** TTL on expireTime for a table we created (a stack-provisioned table declares it itself). */
  private void enableTtl() {
    try {
      client.updateTimeToLive(
          new UpdateTimeToLiveRequest()
              .withTableName(tableName)
              .withTimeToLiveSpecification(
                  new TimeToLiveSpecification()
                      .withAttributeName(ATTR_EXPIRE_TIME)
                      .withEnabled(true)));
    } catch (SdkClientException e) {
      LOG.warn("Could not turn on TTL ({}) on DynamoDB table {}: {}", ATTR_EXPIRE_TIME, tableName, e.toString());
    }
  }

  private String describeStatus() {
    return client
        .describeTable(new DescribeTableRequest().withTableName(tableName))
        .getTable()
        .getTableStatus();
  }
}
