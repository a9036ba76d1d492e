package ai.wafer.cli;

import ai.wafer.WaferException;
import ai.wafer.model.GptConfig;
import ai.wafer.parallel.Layout;
import ai.wafer.parallel.Plan;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code wafer plan}: memory per rank and traffic per step of a parallel layout, before renting machines. */
@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Memory per rank (parameters, gradients, optimizer state, activations) and bytes sent per step "
                + "for a parallel layout, and whether it fits the machines.")
public final class PlanCommand implements Callable<Integer> {
    @Option(names = "--preset", paramLabel = "NAME", description = "model preset (e.g. cerebras-gpt-6.7b)") String preset;
    @Option(names = "--config", paramLabel = "DIR|config.json", description = "model config instead of a preset") Path config;
    @Option(names = "--parallel", paramLabel = "LAYOUT", defaultValue = "dp=1", description = "e.g. dp=2,tp=2 or pp=4 (default: ${DEFAULT-VALUE})")
    String parallel;
    @Option(names = "--batch-size", defaultValue = "8", description = "global batch, rows (default: ${DEFAULT-VALUE})") int batch;
    @Option(names = "--seq-len", defaultValue = "2048", description = "tokens per row (default: ${DEFAULT-VALUE})") int seqLen;
    @Option(names = "--grad-accum", defaultValue = "1", description = "micro-batches per step (default: ${DEFAULT-VALUE})") int gradAccum;
    @Option(names = "--zero1", description = "shard the optimizer moments over data-parallel ranks") boolean zero1;
    @Option(names = "--trainable-fraction", defaultValue = "1", paramLabel = "F",
            description = "share of parameters that train (e.g. 0.01 for LoRA; default: ${DEFAULT-VALUE})") double trainableFraction;
    @Option(names = "--recompute", description = "activation recomputation (as pretrain/finetune --recompute): each block's input kept, the rest rebuilt in backward")
    boolean recompute;
    @Option(names = "--dtype", defaultValue = "fp32", description = "the frozen base's weights (with --trainable-fraction below 1), "
            + "or with --generate all the matrices: fp32, bf16 or int8 (default: ${DEFAULT-VALUE})") String dtype;
    @Option(names = "--generate", description = "plan generation (--batch-size sequences of up to --seq-len tokens), not training") boolean generate;
    @Option(names = "--machines", defaultValue = "1", description = "machines the ranks are spread over (default: ${DEFAULT-VALUE})") int machines;
    @Option(names = "--memory-per-machine", paramLabel = "SIZE", description = "e.g. 80GB or 64GiB") String memory;
    @Option(names = "--bandwidth", paramLabel = "RATE", description = "between machines, e.g. 10Gbit/s or 12.5GB/s") String bandwidth;
    @Spec CommandSpec spec;

    @Override public Integer call() {
        if ((preset == null) == (config == null)) throw new WaferException("give exactly one of --preset NAME or --config PATH");
        GptConfig c = preset != null ? GptConfig.preset(preset)
                : GptConfig.read(config.toFile().isDirectory() ? config.resolve("config.json") : config);
        if (batch < 1 || seqLen < 1 || gradAccum < 1 || machines < 1)
            throw new WaferException("--batch-size, --seq-len, --grad-accum and --machines must be >= 1");
        if (seqLen > c.nPositions()) throw new WaferException("--seq-len " + seqLen + " exceeds the model's n_positions " + c.nPositions());
        if (!(trainableFraction > 0 && trainableFraction <= 1)) throw new WaferException("--trainable-fraction must be in (0, 1]");
        int bytes = switch (dtype.toLowerCase()) {
            case "fp32" -> 4;
            case "bf16" -> 2;
            case "int8" -> 1;
            default -> throw new WaferException("--dtype must be fp32, bf16 or int8, got '" + dtype + "'");
        };
        long mem = memory == null ? 0 : Plan.parseBytes(memory);
        var out = spec.commandLine().getOut();
        if (generate) {
            for (String o : new String[] {"--parallel", "--grad-accum", "--zero1", "--trainable-fraction", "--recompute", "--machines", "--bandwidth"})
                if (spec.commandLine().getParseResult().hasMatchedOption(o)) throw new WaferException(o + " plans training; --generate plans one machine's generation");
            out.print(Plan.generation(c, batch, seqLen, bytes, mem));
            out.flush();
            return 0;
        }
        if (bytes != 4 && trainableFraction == 1) throw new WaferException("--dtype " + dtype + " is the frozen base's: give --trainable-fraction below 1 (the trainable weights are fp32)");
        Layout l = Layout.parse(parallel);
        Plan p = Plan.of(c, l, batch, seqLen, gradAccum, zero1, trainableFraction, recompute, bytes);
        double bw = bandwidth == null ? 0 : Plan.parseBandwidth(bandwidth);
        out.print(p.report(machines, mem, bw));
        out.flush(); // print() does not flush an autoflushing PrintWriter
        return 0;
    }
}
