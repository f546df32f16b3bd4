"""The schema as a list of migrations: entry i moves a store from version i to i + 1.

Shipped entries are never edited (a store in the field has run them): a change is a new entry at the end.
That is why some statements here repeat column lists that a later entry changes.
"""

MESSAGES_TYPE = "STRUCT(role VARCHAR, content VARCHAR)[]"

# Each entry moves the schema from version i to i + 1. Never edit a shipped entry: append a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE imports (
            id VARCHAR PRIMARY KEY,
            path VARCHAR NOT NULL,
            file_hash VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            rows_read BIGINT NOT NULL,
            prompts_added BIGINT NOT NULL,
            responses_added BIGINT NOT NULL,
            labels_added BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        f"""CREATE TABLE prompts (
            id VARCHAR NOT NULL,
            system VARCHAR,
            messages {MESSAGES_TYPE} NOT NULL,
            tags VARCHAR[] NOT NULL DEFAULT [],
            source VARCHAR NOT NULL,
            source_line BIGINT,
            import_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE responses (
            id VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            origin VARCHAR NOT NULL CHECK (origin IN ('person', 'import', 'model')),
            model_version_id VARCHAR,
            author VARCHAR,
            generation JSON,
            source VARCHAR NOT NULL,
            source_line BIGINT,
            import_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        # kind: demonstration (response_id), preference (chosen_id, rejected_id, outcome); later kinds keep
        # their details in payload. outcome is 'chosen' (chosen beat rejected), 'tie' or 'both_bad'.
        """CREATE TABLE labels (
            id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            response_id VARCHAR,
            chosen_id VARCHAR,
            rejected_id VARCHAR,
            outcome VARCHAR CHECK (outcome IS NULL OR outcome IN ('chosen', 'tie', 'both_bad')),
            payload JSON,
            annotator VARCHAR NOT NULL,
            client_id VARCHAR,
            supersedes VARCHAR,
            source VARCHAR NOT NULL,
            source_line BIGINT,
            import_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE users (
            name VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL CHECK (role IN ('annotator', 'reviewer', 'admin')),
            password_hash VARCHAR NOT NULL,
            salt VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE runs (
            id VARCHAR PRIMARY KEY,
            stage VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            parent_version_id VARCHAR,
            config JSON,
            dataset_hash VARCHAR,
            dir VARCHAR NOT NULL,
            error VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            finished_at TIMESTAMP)""",
        """CREATE TABLE model_versions (
            id VARCHAR PRIMARY KEY,
            run_id VARCHAR,
            stage VARCHAR NOT NULL,
            base_model VARCHAR NOT NULL,
            parent_id VARCHAR,
            dataset_hash VARCHAR,
            path VARCHAR NOT NULL,
            config JSON,
            metrics JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
    ],
    # 2: labeling tasks. A task's items are fixed when it is created (which prompt, which responses, which
    # draft). `answers`/`annotators` on an item summarise its standing answers; they change in the same
    # transaction as the label that changes them, so the queue reads one row per item instead of
    # aggregating a million labels on every request. Labels from the UI name their task and item, `ranking` holds an N-way order (best first) and
    # `final` marks an admin's adjudication, which wins in exports. Skips and flags are events, not labels;
    # a draft is the one mutable row: the text an annotator has typed but not submitted.
    [
        """CREATE TABLE tasks (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            kind VARCHAR NOT NULL CHECK (kind IN ('demonstration', 'pairwise', 'ranking')),
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            guidelines VARCHAR NOT NULL DEFAULT '',
            selection JSON,
            created_by VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE task_items (
            task_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            prompt_id VARCHAR NOT NULL,
            response_ids VARCHAR[] NOT NULL DEFAULT [],
            draft_response_id VARCHAR,
            answers INTEGER NOT NULL DEFAULT 0,
            annotators VARCHAR[] NOT NULL DEFAULT [])""",
        # every request looks items up by id: an index turns a 400k-row scan (4 ms) into a point lookup
        "CREATE INDEX task_items_id ON task_items (id)",
        "ALTER TABLE labels ADD COLUMN task_id VARCHAR",
        "ALTER TABLE labels ADD COLUMN item_id VARCHAR",
        "ALTER TABLE labels ADD COLUMN ranking VARCHAR[]",
        "ALTER TABLE labels ADD COLUMN final BOOLEAN DEFAULT false",
        """CREATE TABLE item_events (
            task_id VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            event VARCHAR NOT NULL CHECK (event IN ('skip', 'flag')),
            reason VARCHAR,
            client_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE drafts (
            task_id VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
    ],
    # 3: A/B reviews are tasks of kind 'review': each item pairs one reply of each of two model versions
    # (`versions`) to one prompt, and a vote is a preference label like any other. DuckDB cannot change a
    # CHECK constraint in place, so the tasks table is rebuilt.
    [
        """CREATE TABLE tasks_v3 (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            kind VARCHAR NOT NULL CHECK (kind IN ('demonstration', 'pairwise', 'ranking', 'review')),
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            guidelines VARCHAR NOT NULL DEFAULT '',
            selection JSON,
            created_by VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            versions VARCHAR[])""",
        """INSERT INTO tasks_v3 (id, name, kind, overlap, guidelines, selection, created_by, created_at)
           SELECT id, name, kind, overlap, guidelines, selection, created_by, created_at FROM tasks""",
        "DROP TABLE tasks",
        "ALTER TABLE tasks_v3 RENAME TO tasks",
    ],
    # 4: items imported from another tool (an Argilla record) keep that tool's id, so an export hands the
    # same record back and a second pull updates it instead of adding a copy.
    [
        "ALTER TABLE task_items ADD COLUMN external_id VARCHAR",
    ],
    # 5: 'feedback' tasks: thumbs up or down on one response at a time (KTO's unpaired data); a vote is a label
    # of kind 'feedback' on its response_id with payload.thumb 'up' or 'down'. The CHECK needs a rebuild again.
    [
        """CREATE TABLE tasks_v5 (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            kind VARCHAR NOT NULL CHECK (kind IN ('demonstration', 'pairwise', 'ranking', 'review', 'feedback')),
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            guidelines VARCHAR NOT NULL DEFAULT '',
            selection JSON,
            created_by VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            versions VARCHAR[])""",
        """INSERT INTO tasks_v5 SELECT id, name, kind, overlap, guidelines, selection, created_by, created_at, versions
           FROM tasks""",
        "DROP TABLE tasks",
        "ALTER TABLE tasks_v5 RENAME TO tasks",
    ],
    # 6: active selection. An admin may reorder a task's open items by where a label is worth most (a small
    # margin, two model versions disagreeing, responses that vary); `priority` and `priority_reason`
    # say why an item sits where it does, `first_position` keeps the order the task was made with (to go
    # back to), and tasks.queue_order records how the queue was last ordered.
    [
        "ALTER TABLE task_items ADD COLUMN priority DOUBLE",
        "ALTER TABLE task_items ADD COLUMN priority_reason VARCHAR",
        "ALTER TABLE task_items ADD COLUMN first_position INTEGER",
        "ALTER TABLE tasks ADD COLUMN queue_order JSON",
    ],
    # 7: model judges. A judge is a named setting (an OpenAI-compatible endpoint, a reward-model version, or
    # a policy version / the base model prompted with an admin's template); its verdicts are labels of kind
    # 'judgement' with annotator 'judge:<name>' (payload: what answer kind it stands for, its probability
    # and the template's hash), so no human path (queue counts, agreement, exports) reads them unless asked.
    [
        """CREATE TABLE judges (
            name VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL CHECK (kind IN ('http', 'reward', 'model')),
            config JSON NOT NULL,
            created_by VARCHAR,
            updated_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
    ],
    # 8: what an admin manages in the browser. A deactivated user keeps every label (exports and agreement
    # still name them) but cannot sign in; an archived task leaves every queue and list but keeps its labels;
    # `suggestions` says whether annotators see a judge's verdict on the item they answer ('hidden', shown
    # 'after' their own answer, or 'preselect'ed before it; NULL reads as hidden).
    [
        "ALTER TABLE users ADD COLUMN deactivated_at TIMESTAMP",
        "ALTER TABLE tasks ADD COLUMN archived_at TIMESTAMP",
        "ALTER TABLE tasks ADD COLUMN suggestions VARCHAR",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
