//! The parsed model of a `#[derive(Metrics)]` input: the struct, its service, and each field with
//! its metric type, attribute and help text.

use rsky_metrics_naming::Kind;
use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, PathArguments, Type};

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
    /// The label type `L` of a typed family (`IntCounterFamily<L>`).
    pub label_type: Option<&'a Type>,
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
    IntCounterFamily,
    CounterFamily,
    IntGaugeFamily,
    GaugeFamily,
    HistogramFamily,
}

pub const SUPPORTED_TYPES: &str = "IntCounter, Counter, IntGauge, Gauge, Histogram, IntCounterVec, CounterVec, IntGaugeVec, GaugeVec, HistogramVec, and the typed families IntCounterFamily<L>, CounterFamily<L>, IntGaugeFamily<L>, GaugeFamily<L>, HistogramFamily<L>";

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
            "IntCounterFamily" => Self::IntCounterFamily,
            "CounterFamily" => Self::CounterFamily,
            "IntGaugeFamily" => Self::IntGaugeFamily,
            "GaugeFamily" => Self::GaugeFamily,
            "HistogramFamily" => Self::HistogramFamily,
            _ => return None,
        })
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::IntCounter
            | Self::Counter
            | Self::IntCounterVec
            | Self::CounterVec
            | Self::IntCounterFamily
            | Self::CounterFamily => Kind::Counter,
            Self::IntGauge
            | Self::Gauge
            | Self::IntGaugeVec
            | Self::GaugeVec
            | Self::IntGaugeFamily
            | Self::GaugeFamily => Kind::Gauge,
            Self::Histogram | Self::HistogramVec | Self::HistogramFamily => Kind::Histogram,
        }
    }

    /// Whether the values are integers (`IntCounter`, `IntGaugeVec`, `IntCounterFamily`, ...).
    pub fn is_int(self) -> bool {
        matches!(
            self,
            Self::IntCounter
                | Self::IntCounterVec
                | Self::IntCounterFamily
                | Self::IntGauge
                | Self::IntGaugeVec
                | Self::IntGaugeFamily
        )
    }

    /// Whether it is a typed family, labeled by a type (`IntCounterFamily<L>`).
    pub fn is_family(self) -> bool {
        matches!(
            self,
            Self::IntCounterFamily
                | Self::CounterFamily
                | Self::IntGaugeFamily
                | Self::GaugeFamily
                | Self::HistogramFamily
        )
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
            Self::IntCounterFamily => "IntCounterFamily",
            Self::CounterFamily => "CounterFamily",
            Self::IntGaugeFamily => "IntGaugeFamily",
            Self::GaugeFamily => "GaugeFamily",
            Self::HistogramFamily => "HistogramFamily",
        }
    }

    /// The same family without labels (`IntCounterVec` -> `IntCounter`).
    pub fn unlabeled(self) -> Self {
        match self {
            Self::IntCounterVec => Self::IntCounter,
            Self::CounterVec => Self::Counter,
            Self::IntGaugeVec => Self::IntGauge,
            Self::GaugeVec => Self::Gauge,
            Self::HistogramVec | Self::HistogramFamily => Self::Histogram,
            Self::IntCounterFamily => Self::IntCounter,
            Self::CounterFamily => Self::Counter,
            Self::IntGaugeFamily => Self::IntGauge,
            Self::GaugeFamily => Self::Gauge,
            other => other,
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
            .filter_map(|field| {
                // Named fields always have an identifier.
                let ident = field.ident.as_ref()?;
                let (metric_type, label_type) = match metric_type(&field.ty) {
                    Some((metric_type, label_type)) => (Some(metric_type), label_type),
                    None => (None, None),
                };
                Some(Field {
                    ident,
                    ty: &field.ty,
                    metric_type,
                    label_type,
                    attr: attr::field(cx, &field.attrs),
                    doc: attr::doc(&field.attrs),
                })
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

/// The metric type named by the last path segment of `ty` (`IntCounter`, `prometheus::IntCounter`,
/// `IntCounterFamily<Kind>`, ...), with the label type of a typed family.
fn metric_type(ty: &Type) -> Option<(MetricType, Option<&Type>)> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let metric_type = MetricType::from_ident(&last.ident.to_string())?;
            match (&last.arguments, metric_type.is_family()) {
                (PathArguments::None, false) => Some((metric_type, None)),
                (PathArguments::AngleBracketed(args), true) if args.args.len() == 1 => {
                    match args.args.first() {
                        Some(GenericArgument::Type(label)) => Some((metric_type, Some(label))),
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        Type::Group(group) => metric_type(&group.elem),
        Type::Paren(paren) => metric_type(&paren.elem),
        _ => None,
    }
}
