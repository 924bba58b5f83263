//! The values that cross between the store's code and either database: one small enum,
//! so that the same query code binds parameters and reads columns on SQLite and on
//! PostgreSQL. SQLite's five storage classes are the model; PostgreSQL's integer, boolean,
//! text and bytea types map onto them by the column's declared type.

use std::error::Error;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

use super::DbError;

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Any integer (booleans are stored as 0 and 1, as SQLite does).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The value's kind, for an error that says what was found.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

/// A Rust value the store binds as a parameter.
pub trait ToValue {
    /// The value to bind; an integer beyond the databases' signed 64 bits is refused.
    fn to_value(&self) -> Result<Value, DbError>;
}

/// A Rust value the store reads from a column.
pub trait FromValue: Sized {
    /// The value of a column, or what was expected when it is of another kind.
    fn from_value(value: &Value) -> Result<Self, &'static str>;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Result<Value, DbError> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Result<Value, DbError> {
        match self {
            Some(value) => value.to_value(),
            None => Ok(Value::Null),
        }
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(self.clone())
    }
}

impl ToValue for str {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(Value::Text(self.to_owned()))
    }
}

impl ToValue for String {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(Value::Text(self.clone()))
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(Value::Blob(self.to_vec()))
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(Value::Blob(self.clone()))
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(Value::Int(i64::from(*self)))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(Value::Real(*self))
    }
}

macro_rules! integers {
    ($($int:ty),*) => {$(
        impl ToValue for $int {
            fn to_value(&self) -> Result<Value, DbError> {
                i64::try_from(*self)
                    .map(Value::Int)
                    .map_err(|_| DbError::OutOfRange)
            }
        }

        impl FromValue for $int {
            fn from_value(value: &Value) -> Result<Self, &'static str> {
                match value {
                    Value::Int(int) => <$int>::try_from(*int).map_err(|_| stringify!($int)),
                    _ => Err(stringify!($int)),
                }
            }
        }
    )*};
}

integers!(u64, i32, u32, u16, usize);

impl ToValue for i64 {
    fn to_value(&self) -> Result<Value, DbError> {
        Ok(Value::Int(*self))
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Int(int) => Ok(*int),
            _ => Err("i64"),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Int(int) => Ok(*int != 0),
            _ => Err("boolean"),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Real(real) => Ok(*real),
            Value::Int(int) => Ok(*int as f64),
            _ => Err("real"),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Text(text) => Ok(text.clone()),
            _ => Err("text"),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Blob(bytes) => Ok(bytes.clone()),
            _ => Err("blob"),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        Ok(value.clone())
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(int) => ValueRef::Integer(*int),
            Value::Real(real) => ValueRef::Real(*real),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

impl Value {
    /// A SQLite column's value.
    pub(super) fn from_sqlite(value: rusqlite::types::ValueRef<'_>) -> Result<Self, DbError> {
        use rusqlite::types::ValueRef;
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(int) => Value::Int(int),
            ValueRef::Real(real) => Value::Real(real),
            ValueRef::Text(text) => Value::Text(String::from_utf8(text.to_vec()).map_err(
                |_| DbError::Column {
                    expected: "UTF-8 text",
                    found: "other bytes",
                },
            )?),
            ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
        })
    }
}

type BoxError = Box<dyn Error + Sync + Send>;

/// A parameter is written in the type PostgreSQL inferred for its place in the statement
/// (an integer into an `int4` column as `int4`, into a boolean as a boolean), so that the
/// store's code binds one Rust value whatever the backend.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(int) => match *ty {
                Type::INT8 => int.to_sql(ty, out),
                Type::INT4 => i32::try_from(*int)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*int)?.to_sql(ty, out),
                Type::BOOL => (*int != 0).to_sql(ty, out),
                Type::FLOAT8 => (*int as f64).to_sql(ty, out),
                Type::NUMERIC => Err("an integer parameter in a numeric place".into()),
                _ => int.to_string().to_sql(&Type::TEXT, out),
            },
            Value::Real(real) => match *ty {
                Type::FLOAT4 => (*real as f32).to_sql(ty, out),
                _ => real.to_sql(&Type::FLOAT8, out),
            },
            Value::Text(text) => match *ty {
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(text.as_bytes());
                    Ok(IsNull::No)
                }
                Type::INT8 => text.parse::<i64>()?.to_sql(ty, out),
                _ => text.as_str().to_sql(&Type::TEXT, out),
            },
            Value::Blob(bytes) => bytes.as_slice().to_sql(&Type::BYTEA, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column is read into the kind of SQLite value it would be there.
impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSONB => {
                Value::Text(std::str::from_utf8(raw.get(1..).unwrap_or_default())?.to_owned())
            }
            _ => Value::Text(std::str::from_utf8(raw)?.to_owned()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::INT8,
            Type::INT4,
            Type::INT2,
            Type::BOOL,
            Type::FLOAT8,
            Type::FLOAT4,
            Type::BYTEA,
            Type::JSONB,
            Type::JSON,
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
            Type::UNKNOWN,
        ]
        .contains(ty)
    }
}
