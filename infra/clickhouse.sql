-- FlexStream's ClickHouse tables. Idempotent: run at every start.
-- {db} is replaced by the database name (CLICKHOUSE_DATABASE, default flexstream).

CREATE DATABASE IF NOT EXISTS {db};

-- Every belief ever received. The sorting key identifies a belief, so a replayed
-- message (after a crash, before the offset commit) replaces its earlier copy:
-- query with FINAL (or through latest_beliefs) for exact counts.
CREATE TABLE IF NOT EXISTS {db}.beliefs
(
    sensor LowCardinality(String) COMMENT 'sensor name',
    event_start DateTime64(6, 'UTC') COMMENT 'start of the event',
    event_resolution UInt32 COMMENT 'duration of the event in seconds; 0 = instantaneous',
    belief_time DateTime64(6, 'UTC') COMMENT 'when the value was believed',
    source LowCardinality(String) COMMENT 'who holds the belief',
    cumulative_probability Float64 COMMENT '0.5 for a deterministic value',
    event_value Float64 COMMENT 'in the sensor''s unit',
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row was written'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_start)
ORDER BY (sensor, event_start, source, belief_time, cumulative_probability);

CREATE TABLE IF NOT EXISTS {db}.sensors
(
    name String,
    unit String,
    event_resolution UInt32 COMMENT 'seconds',
    timezone String,
    off_grid LowCardinality(String),
    description String,
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

CREATE TABLE IF NOT EXISTS {db}.sources
(
    name String,
    first_seen DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
ORDER BY name;

-- The current value of each event: the most recent deterministic belief per source.
CREATE VIEW IF NOT EXISTS {db}.latest_beliefs AS
SELECT
    sensor,
    event_start,
    source,
    any(event_resolution) AS event_resolution,
    max(b.belief_time) AS latest_belief_time,
    argMax(b.event_value, b.belief_time) AS event_value
FROM {db}.beliefs AS b FINAL
WHERE cumulative_probability = 0.5
GROUP BY sensor, event_start, source;

-- One value per event across sources: the most recent deterministic belief per
-- (sensor, event_start), whichever source holds it. When two sources believed a
-- value at the same belief_time, the source whose name sorts last wins
-- (argMax over the pair belief_time, source), so the answer never depends on
-- the order rows were stored in.
CREATE VIEW IF NOT EXISTS {db}.latest_values AS
SELECT
    sensor,
    event_start,
    argMax(b.event_resolution, (b.belief_time, b.source)) AS event_resolution,
    max(b.belief_time) AS belief_time,
    argMax(b.source, (b.belief_time, b.source)) AS source,
    argMax(b.event_value, (b.belief_time, b.source)) AS event_value
FROM {db}.beliefs AS b FINAL
WHERE cumulative_probability = 0.5
GROUP BY sensor, event_start;

-- Assets as registered (the registry topic is the source of truth; this is its mirror).
CREATE TABLE IF NOT EXISTS {db}.assets
(
    name String,
    parent Nullable(String),
    devices Array(String) COMMENT 'device (power) sensors of the flex-model',
    body String COMMENT 'the definition as JSON, FlexMeasures field names',
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

-- Forecasters as registered (mirror of the registry topic, like assets).
CREATE TABLE IF NOT EXISTS {db}.forecasters
(
    name String,
    sensor String COMMENT 'the target sensor',
    body String COMMENT 'the definition as JSON (schemas/forecaster.py field names)',
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

-- Forecast accuracy: forecasts (beliefs from source 'forecaster:<name>') scored against
-- the measurements of their events as they arrive, per horizon bucket (the time from
-- belief time to event start). One row per scoring round and bucket holds sums, so any
-- span aggregates exactly (see the forecast_accuracy view). Only pairs with a
-- seasonal-naive value (the baseline, as known at the forecast's belief time) count.
CREATE TABLE IF NOT EXISTS {db}.forecast_scores
(
    source LowCardinality(String) COMMENT 'forecaster:<name>',
    sensor LowCardinality(String) COMMENT 'the forecast sensor',
    horizon_from UInt32 COMMENT 'bucket start, seconds from belief time to event start',
    horizon_to UInt32 COMMENT 'bucket end (exclusive), seconds',
    events_from DateTime64(6, 'UTC') COMMENT 'first scored event start of the round',
    events_to DateTime64(6, 'UTC') COMMENT 'end of the last scored event of the round',
    n UInt64 COMMENT 'forecast-measurement pairs scored',
    abs_error Float64 COMMENT 'sum of |median - measured|',
    abs_measured Float64 COMMENT 'sum of |measured| (WAPE = abs_error / abs_measured)',
    naive_abs_error Float64 COMMENT 'sum of |seasonal-naive - measured|',
    crps Float64 COMMENT 'sum of the CRPS approximated from the quantiles',
    pinball Map(String, Float64) COMMENT 'per cumulative probability (as text, e.g. 0.1): sum of pinball losses',
    scored_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(scored_at)
ORDER BY (source, horizon_from, events_from);

-- Accuracy per forecaster and horizon bucket over everything scored.
CREATE VIEW IF NOT EXISTS {db}.forecast_accuracy AS
SELECT
    source,
    any(sensor) AS sensor,
    horizon_from,
    any(horizon_to) AS horizon_to,
    sum(n) AS pairs,
    sum(abs_error) / sum(n) AS mae,
    sum(abs_error) / nullIf(sum(abs_measured), 0) AS wape,
    sum(crps) / sum(n) AS crps,
    sum(naive_abs_error) / sum(n) AS naive_mae,
    1 - sum(abs_error) / nullIf(sum(naive_abs_error), 0) AS skill,
    sumMap(pinball) AS pinball_sum,
    min(events_from) AS events_from,
    max(events_to) AS events_to
FROM {db}.forecast_scores FINAL
WHERE n > 0
GROUP BY source, horizon_from;
