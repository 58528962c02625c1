// Shapes of the public JSON API the dashboard reads (see /api/docs). Money is a
// decimal USD string, times RFC 3339, tokens integers.

export type Usd = string;

export interface Percentiles {
  count: number;
  avg: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface Totals {
  cost_usd: Usd;
  calls: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  cache_savings_usd: Usd;
}

export interface Summary extends Totals {
  since: string;
  until: string;
  unpriced_calls: number;
  avg_cost_per_call_usd: Usd | null;
  error_rate: string | null;
  web_search_requests: number;
  thinking_tokens: number;
  cost_breakdown_usd: Record<string, Usd>;
  latency_ms: Percentiles;
  ttft_ms: Percentiles;
  previous: Totals & { since: string; until: string };
  change: { cost_pct: string | null; calls_pct: string | null };
}

export interface SeriesPart extends Totals {
  key: string | null;
}

export interface TimePoint extends Totals {
  start: string;
  series?: SeriesPart[];
}

export interface Timeseries {
  granularity: "hour" | "day" | "week" | "month";
  tz: string;
  stack: string | null;
  since: string;
  until: string;
  data: TimePoint[];
}

export interface BreakdownRow extends Totals {
  key: string | null;
  share?: string;
  // by=key rows
  label?: string | null;
  /** The key's own display colour (#rrggbb), null if it has none. */
  color?: string | null;
  // by=session rows
  session_id?: string;
  project?: string | null;
  user?: string | null;
  team?: string | null;
  first_at?: string;
  last_at?: string;
}

export interface Breakdown {
  by: string;
  data: BreakdownRow[];
}

export interface Projection {
  period_start: string;
  period_end: string;
  spent_usd: Usd;
  daily_rate_usd: Usd;
  projected_usd: Usd;
  projected_low_usd: Usd;
  projected_high_usd: Usd;
  days_left: number;
  method: string;
  confidence: string;
}

export interface BudgetForecast extends Projection {
  budget_id: string;
  name: string;
  limit_usd: Usd;
  exhausted_at: string | null;
  projected_over_limit: boolean;
}

export interface Forecast {
  month_end: Projection;
  budgets: BudgetForecast[];
}

export interface CostBreakdown {
  input: number;
  output: number;
  cache_write_5m: number;
  cache_write_1h: number;
  cache_read: number;
  web_search: number;
  modifiers: unknown[];
  notes: string[];
  model_priced: string | null;
  tier: string | null;
  factor: string | null;
  rates: Record<string, string>;
  price_book_version: string | null;
  [extra: string]: unknown;
}

export interface Call {
  id: string;
  created_at: string;
  source: string;
  method: string;
  endpoint: string;
  stream: boolean;
  status_code: number | null;
  request_id: string | null;
  message_id: string | null;
  model: string | null;
  model_requested: string | null;
  stop_reason: string | null;
  complete: boolean;
  error_type: string | null;
  error_message: string | null;
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  cache_creation_5m_input_tokens: number;
  cache_creation_1h_input_tokens: number;
  web_search_requests: number;
  thinking_tokens: number;
  service_tier: string | null;
  cost_usd: Usd | null;
  cache_savings_usd: Usd | null;
  cost_breakdown: CostBreakdown | null;
  pricing_status: string;
  price_book_version: string | null;
  latency_ms: number | null;
  ttft_ms: number | null;
  key_id: string | null;
  key_label: string | null;
  team: string | null;
  user: string | null;
  project: string | null;
  tags: string[];
  session_id: string | null;
  user_agent: string | null;
  note: string | null;
  usage: Record<string, unknown> | null;
}

export interface CallPage {
  data: Call[];
  next_cursor: string | null;
}

export interface Team {
  id: string;
  name: string;
  color: string | null;
  created_at: string;
}

export interface ProxyKey {
  id: string;
  hint: string;
  label: string;
  /** The key's own display colour (#rrggbb), or null: the team's colour is shown. */
  color: string | null;
  team: string | null;
  team_id: string | null;
  user: string | null;
  project: string | null;
  tags: string[];
  upstream: string;
  status: "active" | "revoked" | "expired" | string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  rotated_to: string | null;
}

export interface IssuedKey extends ProxyKey {
  key: string;
}

export interface Budget {
  id: string;
  name: string;
  scope: "global" | "team" | "key" | "user" | "project" | "tag";
  scope_value: string | null;
  period: "daily" | "weekly" | "monthly" | "none";
  limit_usd: Usd;
  thresholds: number[];
  created_at: string;
  period_start: string | null;
  resets_at: string | null;
  spent_usd: Usd;
  reserved_usd: Usd;
  remaining_usd: Usd;
  percent_used: number;
  calls: number;
  refused: number;
  exhausted: boolean;
}

export interface Health {
  status: "ok" | "degraded";
  version: string;
  database: { ok: boolean; error: string | null; url: string };
  recording: {
    queue_depth?: number;
    written?: number;
    spooled?: number;
    lost?: number;
    writer_database_ok?: boolean;
    last_error?: string | null;
  };
  price_book_version: string;
}

export interface User {
  id: string | null;
  username: string;
  role: "admin" | "viewer" | string;
  /** The teams a viewer is limited to; null: every team. */
  teams: string[] | null;
  kind?: "local" | "user" | "token";
}

export interface Me {
  mode: "local" | "team";
  user: User | null;
  csrf_token: string | null;
}

/** A row of an endpoint whose shape this dashboard does not pin down (limits, alerts). */
export type Row = Record<string, unknown>;

export type AlertKind = "budget_threshold" | "budget_forecast" | "spend_spike";
export type ChannelKind = "webhook" | "slack" | "email";

/** An alert channel as listed: never its URL, signing secret or password. */
export interface AlertChannel {
  id: string;
  name: string;
  kind: ChannelKind;
  /** A hint of where it sends: scheme and host, or SMTP host and recipients. */
  target: string;
  settings: Record<string, unknown>;
  /** Only these kinds of alert; null: all. */
  kinds: AlertKind[] | null;
  created_at: string;
}

export interface SmtpSettings {
  host: string;
  port?: number;
  security: "starttls" | "ssl" | "none";
  username?: string;
  sender: string;
  recipients: string[];
}

/** The body of POST /api/alerts/channels. */
export interface ChannelBody {
  name: string;
  kind: ChannelKind;
  url?: string;
  signing_secret?: string;
  smtp?: SmtpSettings;
  password?: string;
  kinds?: AlertKind[];
}

export interface ChannelTest {
  ok: boolean;
  channel: string;
  error: string | null;
}

export interface AlertDelivery {
  channel_id: string;
  channel: string;
  status: "pending" | "sent" | "failed";
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  sent_at: string | null;
}

export interface Alert {
  id: string;
  kind: AlertKind | string;
  subject: string;
  period: string;
  message: string;
  details: Record<string, unknown>;
  created_at: string;
  deliveries: AlertDelivery[];
}

export interface RateLimitBucket {
  /** The key id, team, user or project of a per-subject limit; null for one shared bucket. */
  subject: string | null;
  usage: Record<string, { in_use: number; limit: number; percent: number }>;
  refused: number;
}

export interface RateLimit {
  id: string;
  name: string;
  scope: "global" | "key" | "team" | "user" | "project";
  scope_value: string | null;
  requests_per_minute: number | null;
  input_tokens_per_minute: number | null;
  output_tokens_per_minute: number | null;
  description: string;
  created_at: string | null;
  buckets: RateLimitBucket[];
}

/** The body of POST /api/limits. */
export interface RateLimitBody {
  scope: RateLimit["scope"];
  value: string | null;
  requests_per_minute?: number;
  input_tokens_per_minute?: number;
  output_tokens_per_minute?: number;
  name?: string;
}
