use rsky_metrics_runtime::LabelValue;

#[derive(Clone, Copy, LabelValue)]
pub enum Collection {
    #[label(rename = "app.bsky.feed.post")]
    Post,
    #[label(rename = "app.bsky.feed.post")]
    Repost,
    RedisError,
    #[label(rename = "redis_error")]
    Redis,
}

fn main() {}
