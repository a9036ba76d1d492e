package ai.wafer.train;

import ai.wafer.data.TokenLoader;

import java.nio.file.Path;

/**
 * The seam between {@link Pretrainer#run(StepEngine, TokenLoader, Pretrainer.Reporting, java.io.PrintStream,
 * Pretrainer.Control) the pretraining loop} and how a step is computed: {@link Pretrainer} itself on one process,
 * or one rank's part of a parallel layout ({@code ai.wafer.parallel.DataParallelTrainer},
 * {@code ai.wafer.parallel.ParallelTrainer}). Every rank runs the same loop over its engine, so the ranks call
 * the collective methods (all but {@link #options}, {@link #step}, {@link #writes}, {@link #lastStepBytes}) in
 * the same order; the results are the same on every rank.
 */
public interface StepEngine {
    Pretrainer.Options options();

    /** Optimiser steps taken (a resumed run starts at its checkpoint's). */
    int step();

    /** One optimiser step over the global batch's K micro-batches. */
    Pretrainer.StepResult trainStep();

    /** Mean next-token loss over the first {@code batches} global batches of {@code eval} (the same ones every time). */
    double evalLoss(TokenLoader eval, int batches);

    /** Writes a checkpoint of the whole run (the one-process form) under runDir and returns its directory. */
    Path save(Path runDir);

    /** Continues from a checkpoint written by any engine. */
    void resume(Path checkpoint);

    /** Whether this rank writes the run's files and log lines (rank 0 of a parallel run). */
    default boolean writes() { return true; }

    /** True when any rank was asked to stop ({@code here}: this one was), so that every rank stops at the same step. */
    default boolean anyStop(boolean here) { return here; }

    /** Bytes this rank sent in the last step, or -1 where nothing is sent (one process). */
    default long lastStepBytes() { return -1; }
}
