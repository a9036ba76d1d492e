package ai.wafer.eval;

import ai.wafer.WaferException;
import ai.wafer.data.TextClassificationReader.LabeledText;
import ai.wafer.model.Gpt;
import ai.wafer.model.GptConfig;
import ai.wafer.testutil.Fixtures;
import ai.wafer.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PromptClassifierTest {
    @TempDir Path tmp;
    static final Tokenizer TOK = Tokenizer.load(Fixtures.TOKENIZER);

    /** log p(verbaliser | prompt) by hand: one unpadded row through Gpt.forward, log-softmax of its logits in double. */
    static double handScore(Gpt m, String prompt, String verbaliser) {
        int[] ctx = TOK.encode(prompt), ans = TOK.encode(verbaliser);
        int n = ctx.length + ans.length, V = m.config.vocabSize();
        int[] x = new int[n - 1];
        System.arraycopy(ctx, 0, x, 0, ctx.length);
        System.arraycopy(ans, 0, x, ctx.length, ans.length - 1);
        m.forward(x, null, 1, n - 1);
        float[] logits = m.activations().logits;
        double ll = 0;
        for (int j = 0; j < ans.length; j++) {
            int at = (ctx.length - 1 + j) * V;
            double z = 0;
            for (int v = 0; v < V; v++) z += Math.exp(logits[at + v]);
            ll += logits[at + ans[j]] - Math.log(z);
        }
        return ll;
    }

    @Test
    void eachLabelScoresItsVerbalisersLogProbabilityAfterThePrompt() {
        Gpt m = Gpt.init(GptConfig.of(2, 32, 2, 50257, 64), 5);
        var t = new PromptClassifier.Template("Sort these.\n", "Review: {text}\nVerdict:", "\n###\n",
                Map.of("pos", " good", "neg", " bad, really bad", "mid", " so-so"));
        var demo = new LabeledText("A fine film.", "pos", "train:1");
        // one text under each label: with one candidate the demonstration is the same, so loss_c = logsumexp(ll) - ll_c
        List<String> labels = List.of("pos", "neg", "mid");
        List<LabeledText> data = new ArrayList<>();
        for (int i = 0; i < 3; i++) data.add(new LabeledText("Dull and long.", labels.get(i), "test:" + (i + 1)));
        String prompt = "Sort these.\nReview: A fine film.\nVerdict: good\n###\nReview: Dull and long.\nVerdict:";
        double[] ll = new double[3];
        for (int c = 0; c < 3; c++) ll[c] = handScore(m, prompt, t.verbalisers().get(labels.get(c)));
        double max = Math.max(ll[0], Math.max(ll[1], ll[2])), lse = max + Math.log(Math.exp(ll[0] - max) + Math.exp(ll[1] - max) + Math.exp(ll[2] - max));
        int best = ll[0] == max ? 0 : ll[1] == max ? 1 : 2;
        for (int c = 0; c < 3; c++) {
            var r = PromptClassifier.run(m, TOK, List.of(data.get(c)), List.of(demo), t, 1, 1, done -> { });
            assertEquals(lse - ll[c], r.loss(), 1e-4, "label " + labels.get(c));
            assertEquals(List.of(labels.get(best)), r.pred());
            assertEquals(0, r.cutDemos());
        }
        assertEquals(prompt, PromptClassifier.prompt(t, List.of(demo), new int[][] {TOK.encode(demo.text())}, 99, TOK, data.getFirst()));
    }

    @Test
    void longDemonstrationsAreShortenedTheTargetKeptWhole() {
        Gpt m = Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1);
        String longText = "word ".repeat(60).trim();
        List<LabeledText> pool = List.of(new LabeledText(longText, "a", "train:1"), new LabeledText(longText + " more", "b", "train:2"));
        var target = new LabeledText("short one", "a", "test:1");
        var r = PromptClassifier.run(m, TOK, List.of(target), pool, PromptClassifier.Template.DEFAULT, 2, 3, done -> { });
        assertEquals(1, r.cutDemos());
        assertEquals(0, r.cutLeft());
        // the longest prompt that fits: the target part and both labels still there
        String cut = PromptClassifier.prompt(PromptClassifier.Template.DEFAULT, pool, new int[][] {TOK.encode(pool.get(0).text()), TOK.encode(pool.get(1).text())}, 5, TOK, target);
        assertTrue(cut.startsWith("Text: word word word word word\nLabel: a\n\nText: word word word word word\nLabel: b\n\n"), cut);
        assertTrue(cut.endsWith("Text: short one\nLabel:"), cut);
    }

    @Test
    void demonstrationsAreSeededDistinctAndNeverTheTarget() {
        List<LabeledText> pool = new ArrayList<>();
        for (int i = 0; i < 10; i++) pool.add(new LabeledText("text " + i, i % 2 == 0 ? "x" : "y", "f:" + (i + 1)));
        pool.add(new LabeledText("text 3", "y", "g:1")); // the same text elsewhere: not a demonstration of text 3 either
        List<List<LabeledText>> first = new ArrayList<>(), again = new ArrayList<>();
        SplittableRandom r1 = new SplittableRandom(42), r2 = new SplittableRandom(42);
        for (LabeledText target : pool) {
            var d = PromptClassifier.demonstrations(pool, target, 8, r1);
            first.add(d);
            again.add(PromptClassifier.demonstrations(pool, target, 8, r2));
            assertEquals(8, new HashSet<>(d).size(), "distinct");
            assertTrue(d.stream().noneMatch(e -> e.text().equals(target.text())), target + " in " + d);
        }
        assertEquals(first, again, "a fixed seed repeats");
        assertFalse(first.get(0).equals(first.get(1)), "each target draws anew");
        var e = assertThrows(WaferException.class, () -> PromptClassifier.demonstrations(pool, pool.get(3), 10, new SplittableRandom(1)));
        assertTrue(e.getMessage().contains("10-shot needs 10 examples") && e.getMessage().contains("has 9"), e.getMessage());
    }

    String templateError(String json) throws Exception {
        Path f = tmp.resolve("t.json");
        Files.writeString(f, json);
        return assertThrows(WaferException.class, () -> PromptClassifier.Template.read(f)).getMessage();
    }

    @Test
    void templateErrorsAreNamed() throws Exception {
        assertTrue(templateError("{\"example\": \"{text} is\", \"verbaliser\": {}}").contains("unknown field \"verbaliser\""));
        assertTrue(templateError("{\"instruction\": \"x\"}").contains("\"example\" is missing"));
        assertTrue(templateError("{\"example\": \"Text: {txt}\"}").contains("\"example\" has no {text}"));
        assertTrue(templateError("{\"example\": \"{text}\", \"separator\": 3}").contains("\"separator\" must be a string"));
        assertTrue(templateError("{\"example\": \"{text}\", \"verbalisers\": {\"a\": \" yes\", \"b\": \" yes\"}}").contains("labels \"a\" and \"b\" have the same verbaliser \" yes\""));
        assertTrue(templateError("{\"example\": \"{text}\", \"verbalisers\": {\"a\": \"\"}}").contains("verbaliser of label \"a\" must be a non-empty string"));
        assertTrue(templateError("[\"{text}\"]").contains("a template is a JSON object"));
        assertTrue(templateError("{\"example\": ").contains("t.json: not valid JSON"));
        Path ok = tmp.resolve("ok.json");
        Files.writeString(ok, "{\"example\": \"Q: {text}\\nA:\", \"verbalisers\": {\"a\": \" yes\"}}");
        var t = PromptClassifier.Template.read(ok);
        assertEquals("\n\n", t.separator());
        var data = List.of(new LabeledText("hi", "b", "d.jsonl:4"));
        var e = assertThrows(WaferException.class, () -> PromptClassifier.run(Gpt.init(GptConfig.of(1, 16, 2, 50257, 32), 1), TOK, data, data, t, 0, 1, d -> { }));
        assertEquals("d.jsonl:4: label \"b\" has no verbaliser in the template", e.getMessage());
    }
}
