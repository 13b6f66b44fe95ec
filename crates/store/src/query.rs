//! The statements of the shared store code, built without naming a database.
//!
//! Generic sqlx code needs a where-clause per bound type (`for<'q> i64: Encode<'q, DB> +
//! Type<DB>`, ...) that Rust does not carry from one function to the next, so it would
//! spread to every function written once for both backends. Instead the shared code
//! builds a [`Query`]: its SQL text and its parameters as [`Param`] values. The dialect
//! runs it ([`Dialect::fetch_all`](crate::dialect::Dialect::fetch_all), ...) after
//! [`Query::into_sqlx`] has bound the parameters into a sqlx query of its own database:
//! that function is the one place that lists what a database must encode.

use std::borrow::Cow;

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Database, Encode, Type};
use uuid::Uuid;

use crate::dialect::{Dialect, On};

/// One bound value.
#[derive(Debug, Clone)]
pub enum Param<'a> {
    I64(i64),
    OptI64(Option<i64>),
    F64(f64),
    Bool(bool),
    OptBool(Option<bool>),
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Text(Cow<'a, str>),
    OptText(Option<Cow<'a, str>>),
    /// JSON: `jsonb` in PostgreSQL, text in SQLite.
    Json(Value),
    /// JSON or SQL `NULL`.
    OptJson(Option<Value>),
}

/// A statement and its parameters (`$1`, `$2`, ... in bind order).
#[derive(Debug)]
pub struct Query<'a> {
    sql: Cow<'static, str>,
    params: Vec<Param<'a>>,
}

impl<'a> Query<'a> {
    /// A statement whose text is fixed (usually one of the `.sql` files).
    pub fn new(sql: &'static str) -> Self {
        Query {
            sql: Cow::Borrowed(sql),
            params: Vec::new(),
        }
    }

    /// Binds the next parameter.
    pub fn bind(mut self, value: impl Into<Param<'a>>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Appends text to the statement (for statements built piece by piece).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends the placeholder of a new parameter and binds it.
    pub fn push_bind(&mut self, value: impl Into<Param<'a>>) -> &mut Self {
        self.params.push(value.into());
        let n = self.params.len();
        let sql = self.sql.to_mut();
        sql.push('$');
        sql.push_str(&n.to_string());
        self
    }

    /// Appends `(p1, p2, ...)` with a parameter per value.
    pub fn push_list<T: Into<Param<'a>>>(&mut self, values: impl IntoIterator<Item = T>) {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(value);
        }
        self.push(")");
    }

    /// The statement as a sqlx query of `DB`, its parameters bound. The bounds below are
    /// every type the shared code binds; each dialect calls this for its own database.
    pub fn into_sqlx<DB>(self) -> sqlx::query::Query<'static, DB, <DB as Database>::Arguments>
    where
        DB: Database,
        for<'t> i64: Encode<'t, DB> + Type<DB>,
        for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
        for<'t> f64: Encode<'t, DB> + Type<DB>,
        for<'t> bool: Encode<'t, DB> + Type<DB>,
        for<'t> Option<bool>: Encode<'t, DB> + Type<DB>,
        for<'t> Uuid: Encode<'t, DB> + Type<DB>,
        for<'t> Option<Uuid>: Encode<'t, DB> + Type<DB>,
        for<'t> &'t str: Encode<'t, DB> + Type<DB>,
        for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
        for<'t> Json<&'t Value>: Encode<'t, DB> + Type<DB>,
        for<'t> Option<Json<&'t Value>>: Encode<'t, DB> + Type<DB>,
    {
        let mut q = match self.sql {
            Cow::Borrowed(sql) => sqlx::query(sql),
            Cow::Owned(sql) => sqlx::query(sqlx::AssertSqlSafe(sql)),
        };
        for param in &self.params {
            q = match param {
                Param::I64(v) => q.bind(*v),
                Param::OptI64(v) => q.bind(*v),
                Param::F64(v) => q.bind(*v),
                Param::Bool(v) => q.bind(*v),
                Param::OptBool(v) => q.bind(*v),
                Param::Uuid(v) => q.bind(*v),
                Param::OptUuid(v) => q.bind(*v),
                Param::Text(v) => q.bind(v.as_ref()),
                Param::OptText(v) => q.bind(v.as_deref()),
                Param::Json(v) => q.bind(Json(v)),
                Param::OptJson(v) => q.bind(v.as_ref().map(Json)),
            };
        }
        q
    }

    /// Every row, from a pool or on a connection.
    pub async fn fetch_all<D: Dialect>(self, on: On<'_, D>) -> Result<Vec<D::Row>, sqlx::Error> {
        D::fetch_all(on, self).await
    }

    /// The first row, if any.
    pub async fn fetch_optional<D: Dialect>(
        self,
        on: On<'_, D>,
    ) -> Result<Option<D::Row>, sqlx::Error> {
        D::fetch_optional(on, self).await
    }

    /// The first row; `RowNotFound` without one.
    pub async fn fetch_one<D: Dialect>(self, on: On<'_, D>) -> Result<D::Row, sqlx::Error> {
        D::fetch_one(on, self).await
    }

    /// Runs the statement; the number of rows it changed.
    pub async fn execute<D: Dialect>(self, on: On<'_, D>) -> Result<u64, sqlx::Error> {
        D::execute(on, self).await
    }
}

macro_rules! param_from {
    ($($t:ty => $variant:ident),+ $(,)?) => {
        $(impl<'a> From<$t> for Param<'a> {
            fn from(v: $t) -> Self {
                Param::$variant(v)
            }
        })+
    };
}

param_from! {
    i64 => I64,
    Option<i64> => OptI64,
    f64 => F64,
    bool => Bool,
    Option<bool> => OptBool,
    Uuid => Uuid,
    Option<Uuid> => OptUuid,
    Value => Json,
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Param<'_> {
    fn from(v: String) -> Self {
        Param::Text(Cow::Owned(v))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Param::OptText(v.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Param<'_> {
    fn from(v: Option<String>) -> Self {
        Param::OptText(v.map(Cow::Owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_parameters_are_numbered_in_bind_order() {
        let mut q = Query::new("SELECT 1 FROM t WHERE a = $1").bind(1_i64);
        q.push(" AND b IN ").push_list(["x", "y"]);
        q.push(" LIMIT ").push_bind(5_i64);
        assert_eq!(
            q.sql,
            "SELECT 1 FROM t WHERE a = $1 AND b IN ($2, $3) LIMIT $4"
        );
        assert_eq!(q.params.len(), 4);
    }
}
