package ai.wafer.io;

import ai.wafer.WaferException;
import ai.wafer.io.SafeTensors.DType;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pickle reader for one thing: the {@code data.pkl} of a {@code torch.save}d state dict (pickle protocol 2, as
 * torch writes it). It knows only the opcodes such a pickle uses and resolves only the globals that rebuild tensors
 * ({@link #ALLOWED}); any other global is refused by name when it is read, before anything could call it, and no
 * pickled code path exists here to call anything else. The result is the dict, its tensors as {@link Tensor}s that
 * say where their values are (a storage key in the archive, an offset, sizes, strides).
 */
final class Unpickler {
    /** A storage of the archive ({@code <name>/data/<key>}), with its element type and count. */
    record Storage(String key, DType dtype, long numel) {}

    /** A tensor: a view of a storage. */
    record Tensor(Storage storage, long offset, long[] shape, long[] stride) {}

    /** A resolved, allowed global. */
    private record Global(String name) {}

    private static final Map<String, DType> STORAGES = Map.of("torch.FloatStorage", DType.F32, "torch.HalfStorage", DType.F16,
            "torch.BFloat16Storage", DType.BF16, "torch.BoolStorage", DType.BOOL);
    private static final String ORDERED_DICT = "collections.OrderedDict", REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2",
            REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
    /** Every global a state dict's pickle names; nothing else is resolved. */
    private static final List<String> ALLOWED = java.util.stream.Stream.concat(
            java.util.stream.Stream.of(ORDERED_DICT, REBUILD_TENSOR, REBUILD_PARAMETER), STORAGES.keySet().stream().sorted()).toList();
    private static final Object MARK = new Object();

    private final byte[] in;
    private final String where;
    private int pos;
    private final List<Object> stack = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    Unpickler(byte[] pickle, String where) {
        this.in = pickle;
        this.where = where;
    }

    /** The pickled dict (name to {@link Tensor}, or whatever else was pickled under a name, for the caller to refuse). */
    @SuppressWarnings("unchecked")
    Map<String, Object> load() {
        while (true) {
            int at = pos, op = u8();
            switch (op) {
                case 0x80 -> { int v = u8(); if (v > 2) throw error(at, "pickle protocol " + v + "; torch.save writes protocol 2"); }
                case 'c' -> {
                    String name = line() + "." + line();
                    if (!ALLOWED.contains(name))
                        throw error(at, "refusing global " + name + ": a state dict of tensors names only " + ALLOWED
                                + "; nothing in the file was run");
                    push(new Global(name));
                }
                case ')' -> push(List.of());
                case '}' -> push(new LinkedHashMap<>());
                case 'N' -> push(null);
                case 0x88 -> push(true);
                case 0x89 -> push(false);
                case 'K' -> push((long) u8());
                case 'M' -> push((long) (u8() | u8() << 8));
                case 'J' -> push((long) (u8() | u8() << 8 | u8() << 16 | u8() << 24));
                case 0x8a -> { // LONG1: n little-endian two's-complement bytes
                    int n = u8();
                    if (n > 8) throw error(at, "an integer of " + n + " bytes");
                    long v = 0;
                    for (int i = 0; i < n; i++) v |= (long) u8() << (8 * i);
                    if (n > 0 && n < 8 && (v >>> (8 * n - 1) & 1) != 0) v -= 1L << (8 * n);
                    push(v);
                }
                case 'X' -> {
                    int n = u8() | u8() << 8 | u8() << 16 | u8() << 24;
                    if (n < 0 || n > in.length - pos) throw error(at, "a string longer than the pickle");
                    push(new String(in, pos, n, StandardCharsets.UTF_8));
                    pos += n;
                }
                case '(' -> push(MARK);
                case 't' -> push(List.copyOf(popMark(at)));
                case 0x85 -> push(List.of(pop(at)));
                case 0x86 -> { Object b = pop(at), a = pop(at); push(List.of(a, b)); }
                case 0x87 -> { Object c = pop(at), b = pop(at), a = pop(at); push(List.of(a, b, c)); }
                case 'q' -> memo.put((long) u8(), top(at));
                case 'r' -> memo.put(Integer.toUnsignedLong(u8() | u8() << 8 | u8() << 16 | u8() << 24), top(at));
                case 'h' -> push(get(at, u8()));
                case 'j' -> push(get(at, Integer.toUnsignedLong(u8() | u8() << 8 | u8() << 16 | u8() << 24)));
                case 'Q' -> push(storage(at, pop(at)));
                case 'R' -> { Object args = pop(at); push(call(at, pop(at), args)); }
                case 's' -> { Object v = pop(at), k = pop(at); dict(at, top(at)).put(k, v); }
                case 'u' -> {
                    List<Object> kv = popMark(at);
                    Map<Object, Object> d = dict(at, top(at));
                    for (int i = 0; i + 1 < kv.size(); i += 2) d.put(kv.get(i), kv.get(i + 1));
                }
                // state_dict()'s _metadata attribute: module versions for load_state_dict's upgrade hooks, no values
                case 'b' -> { pop(at); dict(at, top(at)); }
                case '.' -> {
                    Object result = pop(at);
                    if (!(result instanceof Map<?, ?> m) || !m.keySet().stream().allMatch(k -> k instanceof String))
                        throw new WaferException(where + ": the pickle holds " + describe(result) + ", not a state dict (a dict of tensors by name)");
                    return (Map<String, Object>) m;
                }
                default -> throw error(at, String.format("opcode 0x%02x is not one a torch.save state dict uses", op));
            }
        }
    }

    /** BINPERSID: torch's persistent id for a storage, ('storage', storage type, key, location, numel). */
    private Storage storage(int at, Object pid) {
        if (pid instanceof List<?> t && t.size() == 5 && "storage".equals(t.get(0)) && t.get(1) instanceof Global g
                && STORAGES.containsKey(g.name) && t.get(2) instanceof String key && t.get(4) instanceof Long n && n >= 0)
            return new Storage(key, STORAGES.get(g.name), n);
        throw error(at, "a persistent id that is not a storage: " + describe(pid));
    }

    /** REDUCE: the only calls are making an empty OrderedDict and rebuilding tensors and parameters. */
    private Object call(int at, Object f, Object a) {
        List<?> args = a instanceof List<?> l ? l : List.of();
        if (!(f instanceof Global g)) throw error(at, "a call of " + describe(f));
        switch (g.name) {
            case ORDERED_DICT -> { if (args.isEmpty()) return new LinkedHashMap<>(); }
            case REBUILD_PARAMETER -> { // (tensor, requires_grad, backward_hooks)
                if (args.size() == 3 && args.get(0) instanceof Tensor t && emptyHooks(args.get(2))) return t;
            }
            case REBUILD_TENSOR -> { // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if ((args.size() == 6 || args.size() == 7 && (args.get(6) == null || args.get(6) instanceof Map<?, ?> m && m.isEmpty()))
                        && args.get(0) instanceof Storage s && args.get(1) instanceof Long off && off >= 0
                        && emptyHooks(args.get(5))) {
                    long[] shape = longs(args.get(2)), stride = longs(args.get(3));
                    if (shape != null && stride != null && shape.length == stride.length) return new Tensor(s, off, shape, stride);
                }
            }
            default -> { }
        }
        throw error(at, "a call of " + g.name + " with arguments it is not given in a state dict: " + describe(args));
    }

    /** Non-negative integers of a tuple, or null. */
    private static long[] longs(Object o) {
        if (!(o instanceof List<?> l)) return null;
        long[] out = new long[l.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(l.get(i) instanceof Long v) || v < 0) return null;
            out[i] = v;
        }
        return out;
    }

    private static boolean emptyHooks(Object o) { return o instanceof Map<?, ?> m && m.isEmpty(); }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(int at, Object o) {
        if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
        throw error(at, "setting items of " + describe(o));
    }

    private static String describe(Object o) {
        String s = o == null ? "None" : o instanceof Map<?, ?> ? "a dict" : o instanceof Tensor ? "a tensor" : o.toString();
        return s.length() > 100 ? s.substring(0, 100) + "..." : s;
    }

    private int u8() {
        if (pos >= in.length) throw new WaferException(where + ": the pickle ends without its STOP opcode (truncated)");
        return in[pos++] & 0xFF;
    }

    private String line() {
        int start = pos;
        while (u8() != '\n') { }
        return new String(in, start, pos - 1 - start, StandardCharsets.UTF_8);
    }

    private void push(Object o) { stack.add(o); }

    private Object top(int at) {
        if (stack.isEmpty() || stack.getLast() == MARK) throw error(at, "an empty stack");
        return stack.getLast();
    }

    private Object pop(int at) {
        top(at);
        return stack.removeLast();
    }

    private List<Object> popMark(int at) {
        int m = stack.lastIndexOf(MARK);
        if (m < 0) throw error(at, "no MARK");
        List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
        stack.subList(m, stack.size()).clear();
        return items;
    }

    private Object get(int at, long key) {
        if (!memo.containsKey(key)) throw error(at, "memo " + key + " read before it is written");
        return memo.get(key);
    }

    private WaferException error(int at, String what) {
        return new WaferException(where + ": at byte " + at + " of the pickle: " + what);
    }
}
