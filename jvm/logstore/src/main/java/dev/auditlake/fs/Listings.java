package dev.auditlake.fs;

import java.io.IOException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;

/**
 * Hadoop listings handed to Python in one string (auditlake.hadoop_fs).
 *
 * <p>Walked from Python, a listing costs py4j round trips per entry (the iterator's {@code
 * hasNext} and {@code next}, then the path, its text, the length and the time): 6.3-6.6 s for
 * 19,417 local objects, against 0.11 s for Python's own {@code os.scandir}. Here the JVM walks it
 * and returns one string: an entry per record, records ended by {@code \0} (no S3 key holds one:
 * S3's XML listings cannot carry it), each {@code <D|F> \t <length> \t <epoch ms> \t <uri>}, the
 * URI last so that a tab in it stays in it.
 */
public final class Listings {
  private Listings() {}

  /** Every file under {@code path}, as {@link FileSystem#listFiles} gives them. */
  public static String listFiles(FileSystem fs, Path path, boolean recursive) throws IOException {
    return render(fs.listFiles(path, recursive));
  }

  /** The files and folders directly under {@code path} ({@link FileSystem#listStatusIterator}). */
  public static String listStatus(FileSystem fs, Path path) throws IOException {
    return render(fs.listStatusIterator(path));
  }

  private static String render(RemoteIterator<? extends FileStatus> it) throws IOException {
    StringBuilder out = new StringBuilder();
    while (it.hasNext()) {
      FileStatus st = it.next();
      out.append(st.isDirectory() ? 'D' : 'F')
          .append('\t')
          .append(st.getLen())
          .append('\t')
          .append(st.getModificationTime())
          .append('\t')
          .append(st.getPath().toString())
          .append('\0');
    }
    return out.toString();
  }
}
