//! The parsed model of a `#[derive(Metrics)]` input: the struct, its service, and each field with
//! its metric type, attribute and help text.

use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr::{self, ContainerAttr, Doc, FieldAttr};
use crate::ctxt::Ctxt;

pub struct Input<'a> {
    pub ident: &'a Ident,
    pub generics: &'a syn::Generics,
    pub attr: ContainerAttr,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// `None` when the type is not one of the supported metric types (reported by `valid`).
    pub metric_type: Option<MetricType>,
    pub attr: FieldAttr,
    pub doc: Option<Doc>,
}

/// The prometheus types a field may have.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MetricType {
    IntCounter,
    Counter,
    IntGauge,
    Gauge,
    Histogram,
    IntCounterVec,
    CounterVec,
    IntGaugeVec,
    GaugeVec,
    HistogramVec,
}

/// The Prometheus type of a family.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

pub const SUPPORTED_TYPES: &str = "IntCounter, Counter, IntGauge, Gauge, Histogram, IntCounterVec, CounterVec, IntGaugeVec, GaugeVec, HistogramVec";

impl MetricType {
    fn from_ident(ident: &str) -> Option<Self> {
        Some(match ident {
            "IntCounter" => Self::IntCounter,
            "Counter" => Self::Counter,
            "IntGauge" => Self::IntGauge,
            "Gauge" => Self::Gauge,
            "Histogram" => Self::Histogram,
            "IntCounterVec" => Self::IntCounterVec,
            "CounterVec" => Self::CounterVec,
            "IntGaugeVec" => Self::IntGaugeVec,
            "GaugeVec" => Self::GaugeVec,
            "HistogramVec" => Self::HistogramVec,
            _ => return None,
        })
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::IntCounter | Self::Counter | Self::IntCounterVec | Self::CounterVec => {
                Kind::Counter
            }
            Self::IntGauge | Self::Gauge | Self::IntGaugeVec | Self::GaugeVec => Kind::Gauge,
            Self::Histogram | Self::HistogramVec => Kind::Histogram,
        }
    }

    pub fn is_vec(self) -> bool {
        matches!(
            self,
            Self::IntCounterVec
                | Self::CounterVec
                | Self::IntGaugeVec
                | Self::GaugeVec
                | Self::HistogramVec
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::IntCounter => "IntCounter",
            Self::Counter => "Counter",
            Self::IntGauge => "IntGauge",
            Self::Gauge => "Gauge",
            Self::Histogram => "Histogram",
            Self::IntCounterVec => "IntCounterVec",
            Self::CounterVec => "CounterVec",
            Self::IntGaugeVec => "IntGaugeVec",
            Self::GaugeVec => "GaugeVec",
            Self::HistogramVec => "HistogramVec",
        }
    }

    /// The same family without labels (`IntCounterVec` -> `IntCounter`).
    pub fn unlabeled(self) -> Self {
        match self {
            Self::IntCounterVec => Self::IntCounter,
            Self::CounterVec => Self::Counter,
            Self::IntGaugeVec => Self::IntGauge,
            Self::GaugeVec => Self::Gauge,
            Self::HistogramVec => Self::Histogram,
            other => other,
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

impl<'a> Input<'a> {
    /// Parses a derive input. Problems go to `cx`; `None` only when the input is not a struct with
    /// named fields (nothing else can be checked then).
    pub fn from_syn(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => &named.named,
                _ => {
                    cx.error_spanned_by(
                        &input.ident,
                        "#[derive(Metrics)] needs a struct with named fields: one field per metric, named after it",
                    );
                    return None;
                }
            },
            _ => {
                cx.error_spanned_by(
                    &input.ident,
                    "#[derive(Metrics)] works on structs only: declare one struct per service, one field per metric",
                );
                return None;
            }
        };
        let fields = fields
            .iter()
            .map(|field| Field {
                ident: field.ident.as_ref().expect("named fields have identifiers"),
                ty: &field.ty,
                metric_type: metric_type(&field.ty),
                attr: attr::field(cx, &field.attrs),
                doc: attr::doc(&field.attrs),
            })
            .collect();
        Some(Input {
            ident: &input.ident,
            generics: &input.generics,
            attr: attr::container(cx, &input.attrs),
            fields,
        })
    }
}

impl Field<'_> {
    /// The field's part of the metric name: the `name` override or the field's identifier.
    pub fn base_name(&self) -> String {
        match &self.attr.name {
            Some(name) => name.value(),
            None => self.ident.to_string().trim_start_matches("r#").to_owned(),
        }
    }
}

/// The metric type named by the last path segment of `ty` (`IntCounter`, `prometheus::IntCounter`, ...).
fn metric_type(ty: &Type) -> Option<MetricType> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if !last.arguments.is_empty() {
                return None;
            }
            MetricType::from_ident(&last.ident.to_string())
        }
        Type::Group(group) => metric_type(&group.elem),
        Type::Paren(paren) => metric_type(&paren.elem),
        _ => None,
    }
}

/// The exposed family name: `{service}_{field or name}`, plus `_total` for counters unless the name
/// already ends in `_total`.
pub fn full_name(service: &str, base: &str, kind: Kind) -> String {
    let mut name = format!("{service}_{base}");
    if kind == Kind::Counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}
