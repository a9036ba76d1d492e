package ai.wafer.cli;

import ai.wafer.io.Checkpoint;
import ai.wafer.io.SafeTensors;
import ai.wafer.parallel.Plan;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code wafer convert}: a model directory in any form Wafer reads, rewritten as Hugging Face safetensors. */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Rewrite a model directory (safetensors or PyTorch .bin, sharded or not) as Hugging Face safetensors,"
                + " with its config and tokenizer files.")
public final class ConvertCommand implements Callable<Integer> {
    enum Dtype {
        fp32(SafeTensors.DType.F32), bf16(SafeTensors.DType.BF16), fp16(SafeTensors.DType.F16), int8(SafeTensors.DType.I8);
        final SafeTensors.DType type;
        Dtype(SafeTensors.DType type) { this.type = type; }
    }

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "the model directory to read") Path model;
    @Option(names = "--out", required = true, paramLabel = "DIR", description = "where to write; not --model, and empty unless --overwrite") Path out;
    @Option(names = "--dtype", defaultValue = "fp32", description = "weights as ${COMPLETION-CANDIDATES} (int8: I8 matrices with F32 <name>.scale tensors, wpe and vectors F32; default: ${DEFAULT-VALUE})") Dtype dtype;
    @Option(names = "--group-size", defaultValue = "0", paramLabel = "G", description = "with --dtype int8: a scale per output channel and group of G inputs (32, 64, 128; 0 = one per channel; default ${DEFAULT-VALUE})") int groupSize;
    @Option(names = "--max-shard-size", defaultValue = "5GB", paramLabel = "SIZE",
            description = "shard above this size, with an index, e.g. 5GB or 2GiB (default: ${DEFAULT-VALUE})") String maxShardSize;
    @Option(names = "--overwrite", description = "write into a non-empty --out") boolean overwrite;

    @Override public Integer call() {
        long max = Plan.parseBytes(maxShardSize);
        if (max <= 0) throw new IllegalArgumentException("--max-shard-size " + maxShardSize + " must be positive");
        Checkpoint.convert(model, out, dtype.type, groupSize, max, overwrite);
        System.err.println("wafer convert: wrote " + out + " (" + dtype + (dtype == Dtype.int8 ? ", group size " + groupSize : "") + ")");
        return 0;
    }
}
