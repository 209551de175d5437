"""The data engine: prepare training images and score models on labelled tables.

    prompts      the recognition prompts (OTSL, HTML), versioned     (pure; the only prompt text)
    images       finding, keying and sizing images for the VLM       (Pillow)
    vlm          VLMClient: image + prompt in, text out               (on trivia.llm.ChatClient)
    store        ResultStore, work_key: resumable JSONL output, an index of keys
    runner       the one resumable worker-pool loop every command runs on
    sampling_params  every sampling field, sent explicitly               (pure)
    consistency  validity and mean pairwise TEDS of K recognitions    (pure)
    sampling     `trivia data sample`: K recognitions per image, scored
    sanity       the sampling sanity report                           (pure)
    selection    `trivia data select`: the paper's rule or a band     (pure)
    labelled     labelled sets for evaluation (PubTabNet or dataset rows)
    evaluation   `trivia eval`: TEDS / TEDS-S, raw and normalised
    report       the evaluation's CSV, summary and HTML report

Modules are imported by name (`from trivia.engine.vlm import VLMClient`); this package imports
nothing, so the pure parts work without the `data` extra.
"""
