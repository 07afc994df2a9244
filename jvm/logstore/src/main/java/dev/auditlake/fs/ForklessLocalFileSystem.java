package dev.auditlake.fs;

import org.apache.hadoop.fs.LocalFileSystem;

/**
 * {@code fs.file.impl} for local lakes: Hadoop's checksummed local file system over
 * {@link ForklessRawLocalFileSystem}, so the same {@code .crc} side files are written and checked.
 */
public class ForklessLocalFileSystem extends LocalFileSystem {
  public ForklessLocalFileSystem() {
    super(new ForklessRawLocalFileSystem());
  }
}
