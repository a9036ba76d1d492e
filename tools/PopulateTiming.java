// Reading a mapped file range into memory: MemorySegment.load() (WILLNEED, then a touch per page) against one
// madvise(MADV_POPULATE_READ), each after MADV_PAGEOUT of the range, three rounds, on the first GiB of FILE.
// java --enable-native-access=ALL-UNNAMED tools/PopulateTiming.java FILE   (weight streaming reads ahead this way)
import java.lang.foreign.*;
import java.lang.invoke.MethodHandle;
import java.nio.channels.FileChannel;
import java.nio.file.*;
public class PopulateTiming {
  public static void main(String[] a) throws Throwable {
    Linker l = Linker.nativeLinker();
    MethodHandle mad = l.downcallHandle(l.defaultLookup().find("madvise").get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    try (FileChannel ch = FileChannel.open(Path.of(a[0]))) {
      MemorySegment s = ch.map(FileChannel.MapMode.READ_ONLY, 0, 1L << 30, Arena.global());
      for (int r = 0; r < 3; r++) {
        int rc = (int) mad.invokeExact(s, s.byteSize(), 21);
        long t = System.nanoTime(); s.load(); double lt = (System.nanoTime() - t) / 1e9;
        rc = (int) mad.invokeExact(s, s.byteSize(), 21);
        t = System.nanoTime(); int rc2 = (int) mad.invokeExact(s, s.byteSize(), 22); double pt = (System.nanoTime() - t) / 1e9;
        System.out.printf("load %.2f GB/s, populate_read %.2f GB/s (rc %d)%n", 1.073 / lt, 1.073 / pt, rc2);
      }
    }
  }
}
