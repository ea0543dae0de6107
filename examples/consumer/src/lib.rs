//! The metrics of a small shop service, declared as a user of rsky-metrics declares them: every
//! kind of field the derive takes, a typed family, a prometheus `*Vec` and a `#[counted]` handler.

use rsky_metrics_runtime::{
    counted, CountAs, Counter, Gauge, Histogram, HistogramFamily, IntCounter, IntCounterFamily,
    IntCounterVec, IntGauge, LabelSet, LabelValue, Metrics,
};

/// Why an order failed: the label `kind`.
#[derive(Clone, Copy, Debug, LabelValue)]
#[label(name = "kind")]
pub enum FailureKind {
    OutOfStock,
    PaymentDeclined,
    /// What `#[counted]` counts a panic as.
    #[label(panic)]
    Panic,
}

/// The page a request asked for: the label `route`.
#[derive(Clone, Copy, Debug, LabelValue)]
pub enum Route {
    #[label(rename = "/")]
    Home,
    #[label(rename = "/search")]
    Search,
}

/// Whether the request was served from the cache: the label `cache`.
#[derive(Clone, Copy, Debug, LabelValue)]
pub enum Cache {
    Hit,
    Miss,
}

/// Two labels, named after the fields.
#[derive(Clone, Copy, Debug, LabelSet)]
pub struct Request {
    pub route: Route,
    pub cache: Cache,
}

/// Metrics of the shop service.
#[derive(Metrics)]
#[metrics(service = "shop")]
pub struct ShopMetrics {
    /// Orders taken
    pub orders: IntCounter,
    /// Money taken
    pub revenue: Counter,
    /// Orders being handled right now
    pub orders_in_flight: IntGauge,
    /// Share of the stock reserved by open baskets
    #[metric(unit = "ratio")]
    pub reserved_ratio: Gauge,
    /// Time to handle one order
    #[metric(buckets = [0.001, 0.01, 0.1, 1.0])]
    pub order_seconds: Histogram,
    /// Failed orders by kind
    pub order_failures: IntCounterFamily<FailureKind>,
    /// Requests by route and cache outcome
    pub requests: IntCounterFamily<Request>,
    /// Time to answer a request, by route
    #[metric(buckets = [0.01, 0.1])]
    pub request_seconds: HistogramFamily<Route>,
    /// Orders by the customer's country (an open-ended label: string values)
    #[metric(labels = ["country"])]
    pub orders_by_country: IntCounterVec,
    /// Parcels shipped by warehouse (prometheus' own vector type)
    #[metric(labels = ["warehouse"])]
    pub parcels: prometheus::IntCounterVec,
    /// Parcel weight by carrier (prometheus' own vector type)
    #[metric(labels = ["carrier"], buckets = [0.5, 2.0, 10.0])]
    pub parcel_weight_grams: prometheus::HistogramVec,
}

/// Why [`take_order`] refused an order.
#[derive(Debug, PartialEq, Eq)]
pub enum OrderError {
    OutOfStock,
    PaymentDeclined,
}

impl CountAs<FailureKind> for OrderError {
    fn count_as(&self) -> FailureKind {
        match self {
            OrderError::OutOfStock => FailureKind::OutOfStock,
            OrderError::PaymentDeclined => FailureKind::PaymentDeclined,
        }
    }
}

/// Takes an order of `amount`: counted as an order, in flight while it runs, timed, and its
/// failure counted under its kind.
#[counted(ShopMetrics, events = orders, errors = order_failures,
          in_flight = orders_in_flight, duration = order_seconds)]
pub async fn take_order(country: &str, amount: f64, stock: u32) -> Result<f64, OrderError> {
    tokio::task::yield_now().await;
    let metrics = ShopMetrics::global();
    metrics
        .orders_by_country
        .with_label_values(&[country])
        .inc();
    if stock == 0 {
        return Err(OrderError::OutOfStock);
    }
    if amount > 1000.0 {
        return Err(OrderError::PaymentDeclined);
    }
    metrics.revenue.inc_by(amount);
    Ok(amount)
}
