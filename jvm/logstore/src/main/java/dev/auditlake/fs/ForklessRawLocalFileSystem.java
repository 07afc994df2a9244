package dev.auditlake.fs;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.fs.FSLinkResolver;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileUtil;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system without a child process per call.
 *
 * <p>Without Hadoop's native library (it is not in the Maven jars), {@link RawLocalFileSystem}
 * runs {@code chmod} after it creates each file or directory, {@code readlink} for each side of
 * a rename through {@code FileContext} (every Delta commit), and {@code ls -ld} when a listed
 * file's permission is read. On 2 cores a child process cost the driver JVM about 15 ms of CPU;
 * a pipeline hour over a local lake started 432 of them. Here the same answers come from
 * {@code java.nio.file} in the JVM. Anything nio cannot say (a sticky bit, a platform without
 * POSIX attributes) goes to Hadoop's own code.
 *
 * <p>For local lakes only (tests, the demo, a laptop): {@code conf/local.yaml} sets it as
 * {@code fs.file.impl} (wrapped in checksums by {@link ForklessLocalFileSystem}) and, for
 * {@code FileContext}, {@link ForklessLocalFs}.
 */
public class ForklessRawLocalFileSystem extends RawLocalFileSystem {

  private static final PosixFilePermission[] BITS = {
    PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
    PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
    PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
  };

  static short mode(Set<PosixFilePermission> perms) {
    int mode = 0;
    for (int i = 0; i < BITS.length; i++) {
      if (perms.contains(BITS[i])) {
        mode |= 1 << i;
      }
    }
    return (short) mode;
  }

  static Set<PosixFilePermission> perms(short mode) {
    Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
    for (int i = 0; i < BITS.length; i++) {
      if ((mode & (1 << i)) != 0) {
        out.add(BITS[i]);
      }
    }
    return out;
  }

  /** The status of {@code f} from one {@code stat}/{@code lstat} call; null when nio has no POSIX view. */
  private FileStatus nioStatus(Path f, boolean follow) throws IOException {
    java.nio.file.Path p = pathToFile(f).toPath();
    PosixFileAttributes a;
    try {
      a = follow
          ? Files.readAttributes(p, PosixFileAttributes.class)
          : Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      throw new FileNotFoundException("File " + f + " does not exist");
    } catch (UnsupportedOperationException e) {
      return null;
    }
    Path qualified = makeQualified(f);
    FsPermission perm = new FsPermission(mode(a.permissions()));
    long block = getDefaultBlockSize(f);
    if (!a.isSymbolicLink()) {
      return new FileStatus(a.size(), a.isDirectory(), 1, block, a.lastModifiedTime().toMillis(),
          a.lastAccessTime().toMillis(), perm, a.owner().getName(), a.group().getName(), qualified);
    }
    // A link: Hadoop's answer is the target's sizes and times (zeros when it dangles) with the link's path.
    Path target = new Path(Files.readSymbolicLink(p).toString());
    FileStatus to;
    try {
      to = nioStatus(f, true);
    } catch (FileNotFoundException e) {
      return new FileStatus(0, false, 0, 0, 0, 0, FsPermission.getDefault(), "", "", target, qualified);
    }
    if (to == null) {
      return null;
    }
    return new FileStatus(to.getLen(), false, to.getReplication(), to.getBlockSize(),
        to.getModificationTime(), to.getAccessTime(), to.getPermission(), to.getOwner(),
        to.getGroup(), target, qualified);
  }

  @Override
  public FileStatus getFileStatus(Path f) throws IOException {
    FileStatus st = nioStatus(f, true);
    return st != null ? st : super.getFileStatus(f);
  }

  @Override
  public FileStatus getFileLinkStatus(Path f) throws IOException {
    FileStatus st = nioStatus(f, false);
    if (st == null) {
      return super.getFileLinkStatus(f);
    }
    if (st.isSymlink()) {
      st.setSymlink(FSLinkResolver.qualifySymlinkTarget(getUri(), st.getPath(), st.getSymlink()));
    }
    return st;
  }

  @Override
  public Path getLinkTarget(Path f) throws IOException {
    FileStatus st = nioStatus(f, false);
    return st != null ? st.getSymlink() : super.getLinkTarget(f);
  }

  @Override
  public FileStatus[] listStatus(Path f) throws IOException {
    File local = pathToFile(f);
    if (!local.exists()) {
      throw new FileNotFoundException("File " + f + " does not exist");
    }
    if (!local.isDirectory()) {
      return new FileStatus[] {getFileStatus(f)};
    }
    String[] names = FileUtil.list(local);
    List<FileStatus> out = new ArrayList<>(names.length);
    for (String name : names) {
      try {
        out.add(getFileStatus(new Path(f, new Path(null, null, name))));
      } catch (FileNotFoundException e) {
        // removed since it was listed: not there, as Hadoop's own listing says
      }
    }
    return out.toArray(new FileStatus[0]);
  }

  @Override
  public void setPermission(Path p, FsPermission permission) throws IOException {
    if (permission.getStickyBit()) {
      super.setPermission(p, permission);
      return;
    }
    try {
      Files.setPosixFilePermissions(pathToFile(p).toPath(), perms(permission.toShort()));
    } catch (UnsupportedOperationException e) {
      super.setPermission(p, permission);
    } catch (NoSuchFileException e) {
      throw new FileNotFoundException("File " + p + " does not exist");
    }
  }
}
