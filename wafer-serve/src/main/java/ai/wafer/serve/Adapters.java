package ai.wafer.serve;

import ai.wafer.WaferException;
import ai.wafer.generate.InferenceModel;
import ai.wafer.model.Task;
import ai.wafer.peft.AdapterIo;
import ai.wafer.peft.MixedAdapters;
import ai.wafer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The adapters one server holds over its one base ({@link InferenceModel#mixing}), by the name a request gives as its
 * {@code model}: loaded at start ({@code --adapter NAME=DIR}) or while running, from under the adapter root only.
 * Unloading drops the name; requests already holding the adapter finish with it, and its memory goes with the last.
 */
final class Adapters {
    /** One adapter by name: generation's rows (a causal-LM adapter) or a classifier on the shared base. */
    record Served(String name, Path dir, MixedAdapters.Adapter adapter, Classifier classifier) {
        Task task() { return adapter.ft.task; }
    }

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    private final Path baseDir;
    private final String baseName;
    private final InferenceModel base;
    private final Tokenizer tokenizer;
    /** Real path of --adapter-root, or null: no loading over HTTP. */
    private final Path root;
    private final Map<String, Served> byName = new LinkedHashMap<>();

    Adapters(Path baseDir, String baseName, InferenceModel base, Tokenizer tokenizer, Path root) {
        this.baseDir = baseDir;
        this.baseName = baseName;
        this.base = base;
        this.tokenizer = tokenizer;
        if (root != null && !Files.isDirectory(root)) throw new WaferException("--adapter-root " + root + ": no such directory");
        try {
            this.root = root == null ? null : root.toRealPath();
        } catch (IOException e) {
            throw new WaferException("--adapter-root " + root + ": " + e.getMessage());
        }
    }

    synchronized Served get(String name) { return byName.get(name); }

    synchronized List<Served> all() { return new ArrayList<>(byName.values()); }

    /** Loads {@code dir} as {@code name}; a name taken or invalid, or an adapter that does not fit the base, is a WaferException. */
    Served load(String name, Path dir) {
        if (!NAME.matcher(name).matches())
            throw new WaferException("adapter name '" + name + "': use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit");
        if (name.equals(baseName)) throw new WaferException("adapter name '" + name + "' is the base model's name");
        if (get(name) != null) throw new WaferException("an adapter named '" + name + "' is loaded already");
        if (!AdapterIo.isAdapter(dir)) throw new WaferException(dir + ": not an adapter directory (no " + AdapterIo.CONFIG + ")");
        MixedAdapters.Adapter a = base.loadAdapter(baseDir, dir);
        Classifier cls = null;
        if (a.ft.task.classifies()) {
            if (tokenizer == null) throw new WaferException(dir + ": a classifier reads text, and the base has no tokenizer (pass --tokenizer DIR)");
            cls = Classifier.shared(name, a, tokenizer, base);
        }
        Served s = new Served(name, dir, a, cls);
        synchronized (this) {
            if (byName.putIfAbsent(name, s) != null) throw new WaferException("an adapter named '" + name + "' is loaded already");
        }
        return s;
    }

    /** Drops {@code name}; false when there is none. */
    synchronized boolean unload(String name) { return byName.remove(name) != null; }

    /**
     * A client's {@code path} as a real directory under the root: relative to the root or absolute within it, no
     * {@code ..}, and inside the root still after following links; else 403 (or 404 when there is nothing there).
     */
    Path underRoot(String path) {
        if (root == null)
            throw new ApiException(403, "loading adapters is off: start the server with --adapter-root DIR", "path", "adapter_loading_disabled");
        Path p;
        try {
            p = Path.of(path);
        } catch (InvalidPathException e) {
            throw ApiException.bad("path '" + path + "' is not a path: " + e.getReason(), "path");
        }
        for (Path part : p)
            if (part.toString().equals(".."))
                throw new ApiException(403, "path '" + path + "' contains '..': give a directory under the adapter root", "path", "path_outside_adapter_root");
        if (p.isAbsolute() && !p.normalize().startsWith(root))
            throw new ApiException(403, "path '" + path + "' is outside the adapter root", "path", "path_outside_adapter_root");
        Path real;
        try {
            real = root.resolve(p).toRealPath();
        } catch (IOException e) {
            throw new ApiException(404, "no directory '" + path + "' under the adapter root", "path", "adapter_not_found");
        }
        if (!real.startsWith(root))
            throw new ApiException(403, "path '" + path + "' leads outside the adapter root (through a link)", "path", "path_outside_adapter_root");
        if (!Files.isDirectory(real)) throw ApiException.bad("path '" + path + "' is not a directory", "path");
        return real;
    }
}
