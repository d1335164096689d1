//! Proves the hand-derived prost types in `src/messages.rs` agree with
//! `sales.proto` and `grpc/health/v1/health.proto`, using an independent
//! compiler: `protox` compiles the .proto files, `prost-reflect` reads and
//! writes messages from the compiled descriptors alone.
//!
//! 1. The descriptors say what DESIGN.md says: every field's name, number,
//!    type and `optional` presence; the services and their methods.
//! 2. Random values of our types decode, field by field, to the same values
//!    through the descriptors, with no unknown fields; and the reverse.

use std::borrow::Cow;
use std::fmt::Debug;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};
use proto::{
    paths, Empty, HealthCheckRequest, HealthCheckResponse, SalesRequest, SalesResponse,
    ServingStatus, SystemStats,
};

fn pool() -> DescriptorPool {
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut compiler = protox::Compiler::new([dir]).expect("include dir");
    compiler
        .open_files(["sales.proto", "grpc/health/v1/health.proto"])
        .unwrap_or_else(|e| panic!("the .proto files do not compile: {e}"));
    compiler.descriptor_pool()
}

fn message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} not in the descriptors"))
}

#[derive(Debug, PartialEq)]
enum Ty {
    String,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Double,
    Enum(&'static str),
}

/// One field of the contract: name, number, type, `optional`.
type FieldSpec = (&'static str, u32, Ty, bool);

/// The contract of DESIGN.md: every message and its fields.
fn contract() -> Vec<(&'static str, Vec<FieldSpec>)> {
    use Ty::*;
    vec![
        (
            "protocol.SalesRequest",
            vec![
                ("region", 1, String, false),
                ("category", 2, String, false),
                ("start_date", 3, String, false),
                ("end_date", 4, String, false),
                ("min_amount", 5, Int64, false),
                ("max_amount", 6, Int64, false),
                ("product_keyword", 7, String, false),
                ("buyer_keyword", 8, String, false),
                ("start_hour", 9, Int32, true),
                ("end_hour", 10, Int32, true),
            ],
        ),
        (
            "protocol.SalesResponse",
            vec![
                ("total_sales_count", 1, Int64, false),
                ("total_revenue", 2, Int64, false),
                ("average_amount", 3, Double, false),
                ("region_processed", 4, String, false),
            ],
        ),
        ("protocol.Empty", vec![]),
        (
            "protocol.SystemStats",
            vec![
                ("cpu_usage", 1, Double, false),
                ("memory_usage", 2, Uint64, false),
                ("active_goroutines", 3, Uint32, false),
            ],
        ),
        (
            "grpc.health.v1.HealthCheckRequest",
            vec![("service", 1, String, false)],
        ),
        (
            "grpc.health.v1.HealthCheckResponse",
            vec![(
                "status",
                1,
                Enum("grpc.health.v1.HealthCheckResponse.ServingStatus"),
                false,
            )],
        ),
    ]
}

#[test]
fn descriptors_match_the_contract() {
    let pool = pool();
    for (name, fields) in contract() {
        let desc = message(&pool, name);
        assert_eq!(
            desc.fields().len(),
            fields.len(),
            "{name}: number of fields"
        );
        for (field, number, ty, optional) in fields {
            let f = desc
                .get_field_by_name(field)
                .unwrap_or_else(|| panic!("{name}.{field} missing"));
            assert_eq!(f.number(), number, "{name}.{field} number");
            let kind = match f.kind() {
                Kind::String => Ty::String,
                Kind::Int32 => Ty::Int32,
                Kind::Int64 => Ty::Int64,
                Kind::Uint32 => Ty::Uint32,
                Kind::Uint64 => Ty::Uint64,
                Kind::Double => Ty::Double,
                Kind::Enum(e)
                    if e.full_name() == "grpc.health.v1.HealthCheckResponse.ServingStatus" =>
                {
                    Ty::Enum("grpc.health.v1.HealthCheckResponse.ServingStatus")
                }
                other => panic!("{name}.{field}: unexpected kind {other:?}"),
            };
            assert_eq!(kind, ty, "{name}.{field} type");
            assert!(!f.is_list() && !f.is_map(), "{name}.{field} is singular");
            assert_eq!(f.supports_presence(), optional, "{name}.{field} optional");
            assert_eq!(
                f.field_descriptor_proto().proto3_optional.unwrap_or(false),
                optional
            );
        }
    }

    let status = pool
        .get_enum_by_name("grpc.health.v1.HealthCheckResponse.ServingStatus")
        .expect("ServingStatus");
    for (name, ours) in [
        ("UNKNOWN", ServingStatus::Unknown),
        ("SERVING", ServingStatus::Serving),
        ("NOT_SERVING", ServingStatus::NotServing),
        ("SERVICE_UNKNOWN", ServingStatus::ServiceUnknown),
    ] {
        assert_eq!(
            status.get_value_by_name(name).map(|v| v.number()),
            Some(ours as i32),
            "{name}"
        );
    }
    assert_eq!(status.values().len(), 4);
}

#[test]
fn services_and_paths_match() {
    let pool = pool();
    let sim = pool
        .get_service_by_name("protocol.SimulationService")
        .expect("SimulationService");
    let methods: Vec<_> = sim
        .methods()
        .map(|m| {
            (
                m.name().to_owned(),
                m.input().full_name().to_owned(),
                m.output().full_name().to_owned(),
                m.is_client_streaming() || m.is_server_streaming(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            (
                "GetSalesMetrics".into(),
                "protocol.SalesRequest".into(),
                "protocol.SalesResponse".into(),
                false
            ),
            (
                "GetSystemStats".into(),
                "protocol.Empty".into(),
                "protocol.SystemStats".into(),
                false
            ),
        ]
    );
    let health = pool
        .get_service_by_name("grpc.health.v1.Health")
        .expect("Health");
    let check = health
        .methods()
        .find(|m| m.name() == "Check")
        .expect("Check");
    assert!(!check.is_client_streaming() && !check.is_server_streaming());
    assert_eq!(
        check.input().full_name(),
        "grpc.health.v1.HealthCheckRequest"
    );
    assert_eq!(
        check.output().full_name(),
        "grpc.health.v1.HealthCheckResponse"
    );

    let path =
        |svc: &prost_reflect::ServiceDescriptor, m: &str| format!("/{}/{m}", svc.full_name());
    assert_eq!(paths::GET_SALES_METRICS, path(&sim, "GetSalesMetrics"));
    assert_eq!(paths::GET_SYSTEM_STATS, path(&sim, "GetSystemStats"));
    assert_eq!(paths::HEALTH_CHECK, path(&health, "Check"));
}

/// Our value's fields as the descriptors would read them; `None` for an
/// unset `optional` field.
type Fields = Vec<(&'static str, Option<Value>)>;

/// Encodes `ours`, decodes through the descriptor and compares each field;
/// then builds the same message dynamically and decodes it with our type.
fn agree<M: Message + Default + PartialEq + Debug>(
    desc: &MessageDescriptor,
    ours: &M,
    fields: Fields,
) {
    let name = desc.full_name();
    assert_eq!(
        fields.len(),
        desc.fields().len(),
        "{name}: test covers every field"
    );
    let dynamic = DynamicMessage::decode(desc.clone(), &*ours.encode_to_vec())
        .unwrap_or_else(|e| panic!("{name}: our bytes do not decode: {e}"));
    assert_eq!(
        dynamic.unknown_fields().count(),
        0,
        "{name}: unknown fields in {ours:?}"
    );

    let mut built = DynamicMessage::new(desc.clone());
    for (field, value) in &fields {
        let f = desc.get_field_by_name(field).expect("field");
        match value {
            None => assert!(!dynamic.has_field(&f), "{name}.{field} should be unset"),
            Some(v) => {
                if f.supports_presence() {
                    assert!(dynamic.has_field(&f), "{name}.{field} should be set");
                }
                assert_eq!(
                    dynamic.get_field(&f),
                    Cow::Borrowed(v),
                    "{name}.{field} in {ours:?}"
                );
                built.set_field(&f, v.clone());
            }
        }
    }
    let back = M::decode(&*built.encode_to_vec()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&back, ours, "{name}: built dynamically");
    let back = M::decode(&*dynamic.encode_to_vec()).unwrap();
    assert_eq!(&back, ours, "{name}: re-encoded dynamically");
}

fn text(rng: &mut fastrand::Rng) -> String {
    const PIECES: [&str; 8] = ["", "Europe", "é", "☃", "a b", "%", "\0", "Kitchenware"];
    (0..rng.usize(0..4))
        .map(|_| PIECES[rng.usize(..PIECES.len())])
        .collect()
}

fn int64(rng: &mut fastrand::Rng) -> i64 {
    match rng.u8(0..4) {
        0 => 0,
        1 => rng.i64(-100..100),
        2 => rng.i64(..),
        _ => [i64::MIN, i64::MAX, -1][rng.usize(..3)],
    }
}

fn double(rng: &mut fastrand::Rng) -> f64 {
    match rng.u8(0..3) {
        0 => 0.0,
        1 => rng.f64() * 100.0,
        // Any finite bit pattern (NaN never compares equal).
        _ => loop {
            let d = f64::from_bits(rng.u64(..));
            if d.is_finite() {
                break d;
            }
        },
    }
}

#[test]
fn random_values_agree_with_the_descriptors() {
    let pool = pool();
    let mut rng = fastrand::Rng::with_seed(0xC0FFEE);
    let opt = |rng: &mut fastrand::Rng| -> Option<i32> {
        match rng.u8(0..4) {
            0 => None,
            1 => Some(0), // set to zero is not unset
            2 => Some(rng.i32(-5..30)),
            _ => Some(rng.i32(..)),
        }
    };
    for _ in 0..2_000 {
        let r = SalesRequest {
            region: text(&mut rng),
            category: text(&mut rng),
            start_date: text(&mut rng),
            end_date: text(&mut rng),
            min_amount: int64(&mut rng),
            max_amount: int64(&mut rng),
            product_keyword: text(&mut rng),
            buyer_keyword: text(&mut rng),
            start_hour: opt(&mut rng),
            end_hour: opt(&mut rng),
        };
        let fields = vec![
            ("region", Some(Value::String(r.region.clone()))),
            ("category", Some(Value::String(r.category.clone()))),
            ("start_date", Some(Value::String(r.start_date.clone()))),
            ("end_date", Some(Value::String(r.end_date.clone()))),
            ("min_amount", Some(Value::I64(r.min_amount))),
            ("max_amount", Some(Value::I64(r.max_amount))),
            (
                "product_keyword",
                Some(Value::String(r.product_keyword.clone())),
            ),
            (
                "buyer_keyword",
                Some(Value::String(r.buyer_keyword.clone())),
            ),
            ("start_hour", r.start_hour.map(Value::I32)),
            ("end_hour", r.end_hour.map(Value::I32)),
        ];
        agree(&message(&pool, "protocol.SalesRequest"), &r, fields);

        let r = SalesResponse {
            total_sales_count: int64(&mut rng),
            total_revenue: int64(&mut rng),
            average_amount: double(&mut rng),
            region_processed: text(&mut rng),
        };
        let fields = vec![
            ("total_sales_count", Some(Value::I64(r.total_sales_count))),
            ("total_revenue", Some(Value::I64(r.total_revenue))),
            ("average_amount", Some(Value::F64(r.average_amount))),
            (
                "region_processed",
                Some(Value::String(r.region_processed.clone())),
            ),
        ];
        agree(&message(&pool, "protocol.SalesResponse"), &r, fields);

        let s = SystemStats {
            cpu_usage: double(&mut rng),
            memory_usage: if rng.bool() {
                rng.u64(..)
            } else {
                rng.u64(..1 << 20)
            },
            active_goroutines: if rng.bool() {
                rng.u32(..)
            } else {
                rng.u32(..100)
            },
        };
        let fields = vec![
            ("cpu_usage", Some(Value::F64(s.cpu_usage))),
            ("memory_usage", Some(Value::U64(s.memory_usage))),
            ("active_goroutines", Some(Value::U32(s.active_goroutines))),
        ];
        agree(&message(&pool, "protocol.SystemStats"), &s, fields);

        let h = HealthCheckRequest {
            service: text(&mut rng),
        };
        let fields = vec![("service", Some(Value::String(h.service.clone())))];
        agree(
            &message(&pool, "grpc.health.v1.HealthCheckRequest"),
            &h,
            fields,
        );

        let h = HealthCheckResponse {
            status: rng.i32(0..4),
        };
        let fields = vec![("status", Some(Value::EnumNumber(h.status)))];
        agree(
            &message(&pool, "grpc.health.v1.HealthCheckResponse"),
            &h,
            fields,
        );
    }
    agree(&message(&pool, "protocol.Empty"), &Empty {}, vec![]);
}
