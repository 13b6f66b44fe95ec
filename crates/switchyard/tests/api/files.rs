//! Files through the real server: uploads streamed to storage and back, ranges, limits,
//! content addressing, owners, signed URLs, `$file` references. The storage is the local
//! directory here; `files_on_s3` runs the same round trip against S3-compatible storage
//! (TEST_S3_ENDPOINT), and the cluster test through two servers on PostgreSQL and S3.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_core::auth::Role;

use crate::common::*;

const CHUNK: u64 = 1 << 20;

/// Chunk `i` of a `len`-byte pseudo-random pattern.
fn chunk_of(len: u64, seed: u8, i: u64) -> Vec<u8> {
    let n = CHUNK.min(len - i * CHUNK) as usize;
    (0..n)
        .map(|j| (j as u64 ^ i.wrapping_mul(2_654_435_761)) as u8 ^ seed)
        .collect()
}

/// `len` bytes of a fixed pseudo-random pattern, made and hashed in chunks: a body that
/// is never whole in memory.
fn pattern(len: u64, seed: u8) -> (reqwest::Body, String) {
    let chunks = len.div_ceil(CHUNK);
    let mut hasher = Sha256::new();
    for i in 0..chunks {
        hasher.update(chunk_of(len, seed, i));
    }
    let stream = futures::stream::iter(0..chunks)
        .map(move |i| Ok::<_, std::io::Error>(chunk_of(len, seed, i)));
    (
        reqwest::Body::wrap_stream(stream),
        hex::encode(hasher.finalize()),
    )
}

async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/files?name={name}")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn download(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    range: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(r) = range {
        request = request.header("range", r);
    }
    request.send().await.unwrap()
}

/// Streams a response, returning its length and SHA-256.
async fn hash_of(response: reqwest::Response) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut len = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        len += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (len, hex::encode(hasher.finalize()))
}

async fn delete(app: &TestApp, file: &Value) -> StatusCode {
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());
    app.call("DELETE", &path, Some(&app.admin), None).await.0
}

fn objects_on_disk(app: &TestApp) -> usize {
    walk(&app.dir.path().join("files/objects"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Uploads 100 MiB, downloads it whole and by ranges: the same bytes, the same SHA-256.
pub async fn round_trip(app: &TestApp) {
    const SIZE: u64 = 100 << 20;
    let (body, sha) = pattern(SIZE, 7);
    let (status, file) = upload(app, &app.admin, "big.bin", body).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(
        (file["size"].as_u64(), file["sha256"].as_str()),
        (Some(SIZE), Some(sha.as_str()))
    );
    assert_eq!(file["content_type"], "application/octet-stream");
    let path = format!("/api/v1/files/{}/content", file["id"].as_str().unwrap());
    let whole = download(app, Some(&app.admin), &path, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(whole.headers()["content-length"], SIZE.to_string().as_str());
    assert!(
        whole.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(hash_of(whole).await, (SIZE, sha));

    let expected: Vec<u8> = (0..SIZE.div_ceil(CHUNK))
        .flat_map(|i| chunk_of(SIZE, 7, i))
        .collect();
    for (range, slice) in [
        ("bytes=0-99", 0..100usize),
        ("bytes=5000000-5999999", 5_000_000..6_000_000),
        ("bytes=-10", expected.len() - 10..expected.len()),
        ("bytes=104857000-", 104_857_000..expected.len()),
    ] {
        let r = download(app, Some(&app.admin), &path, Some(range)).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let content_range = r.headers()["content-range"].to_str().unwrap().to_owned();
        assert_eq!(
            content_range,
            format!("bytes {}-{}/{SIZE}", slice.start, slice.end - 1)
        );
        assert_eq!(&r.bytes().await.unwrap()[..], &expected[slice], "{range}");
    }
    let outside = download(app, Some(&app.admin), &path, Some("bytes=104857600-")).await;
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        outside.headers()["content-range"],
        format!("bytes */{SIZE}").as_str()
    );
    let etag = format!("\"{}\"", file["sha256"].as_str().unwrap());
    let cached = app
        .client
        .get(app.url(&path))
        .bearer_auth(&app.admin)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_mebibytes_go_up_and_come_back() {
    let app = TestApp::spawn().await;
    round_trip(&app).await;
    assert!(
        walk(&app.dir.path().join("files/partial")) == 0,
        "no partial file stays behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_are_stored_once_and_removed_with_their_last_file() {
    let app = TestApp::spawn().await;
    let (_, a) = upload(&app, &app.admin, "a.txt", "same bytes").await;
    let (_, b) = upload(&app, &app.admin, "b.txt", "same bytes").await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["sha256"], b["sha256"]);
    assert_eq!(
        a["content_type"], "application/octet-stream",
        "the sent type is kept"
    );
    assert_eq!(objects_on_disk(&app), 1, "one copy of the bytes");
    let (_, other) = upload(&app, &app.admin, "c.txt", "other bytes").await;
    assert_eq!(objects_on_disk(&app), 2);
    for f in [&a, &other] {
        assert_eq!(delete(&app, f).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(objects_on_disk(&app), 1, "b still uses the shared bytes");
    let path = format!("/api/v1/files/{}/content", b["id"].as_str().unwrap());
    let r = download(&app, Some(&app.admin), &path, None).await;
    assert_eq!(r.text().await.unwrap(), "same bytes");
    assert_eq!(delete(&app, &b).await, StatusCode::NO_CONTENT);
    assert_eq!(objects_on_disk(&app), 0);
    let (status, gone) = app
        .get(&format!("/api/v1/files/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (status, error_code(&gone)),
        (StatusCode::NOT_FOUND, "file_not_found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_limit_or_the_quota_are_413() {
    let app = TestApp::spawn_with(|c| {
        c.files.max_bytes = 1 << 20;
        c.files.quota_bytes = 3 << 20;
    })
    .await;
    let (_, token) = app.user(Role::Operator).await;
    let (status, body) = upload(&app, &token, "big.bin", vec![0u8; (1 << 20) + 1]).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large")
    );
    // Without a length (chunked), it is refused once the limit is passed.
    let (chunked, _) = pattern((1 << 20) + 70_000, 1);
    let (status, body) = upload(&app, &token, "big.bin", chunked).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
        "{body}"
    );
    for i in 0..3u8 {
        let (status, body) = upload(&app, &token, "ok.bin", vec![i; 1 << 20]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = upload(&app, &token, "more.bin", vec![9u8; 10]).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"),
        "{body}"
    );
    let (_, mine) = app.call("GET", "/api/v1/files", Some(&token), None).await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        3,
        "nothing of the refused ones"
    );
    assert_eq!(walk(&app.dir.path().join("files/partial")), 0);
    assert_eq!(objects_on_disk(&app), 3);
    // Bad input: no name, a name of control characters, a malformed multipart body.
    let (status, body) = upload(&app, &token, "", "x").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_file")
    );
    let (status, body) = upload(&app, &token, "a%0Ab", "x").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_file")
    );
    let response = app
        .client
        .post(app.url("/api/v1/files"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--XYZ--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_keep_the_part_s_name_and_type() {
    let app = TestApp::spawn().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"{\"a\": 1}".to_vec())
            .file_name("C:\\data\\r\u{e9}sum\u{e9}.json")
            .mime_str("application/json")
            .unwrap(),
    );
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/files"))
        .bearer_auth(&app.admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(
        (file["name"].as_str(), file["content_type"].as_str()),
        (Some("r\u{e9}sum\u{e9}.json"), Some("application/json"))
    );
    let r = download(
        &app,
        Some(&app.admin),
        &format!("/api/v1/files/{}/content", file["id"].as_str().unwrap()),
        None,
    )
    .await;
    let headers = r.headers();
    assert_eq!(
        headers["content-disposition"],
        "inline; filename=\"r_sum_.json\"; filename*=UTF-8''r%C3%A9sum%C3%A9.json"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
    // HTML never shows inline from our origin.
    let (_, html) = upload(&app, &app.admin, "page.html", "<script>alert(1)</script>").await;
    let r = download(
        &app,
        Some(&app.admin),
        &format!("/api/v1/files/{}/content", html["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_s_files_are_not_found() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user(Role::Operator).await;
    let (_, bob) = app.user(Role::Operator).await;
    let (_, file) = upload(&app, &alice, "secret.txt", "alice's").await;
    let id = file["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/api/v1/files/{id}")),
        ("GET", format!("/api/v1/files/{id}/content")),
        ("DELETE", format!("/api/v1/files/{id}")),
        ("GET", format!("/api/v1/files/{}", uuid::Uuid::now_v7())),
    ] {
        let (status, body) = app.call(method, &path, Some(&bob), None).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::NOT_FOUND, "file_not_found"),
            "{method} {path}"
        );
    }
    let (_, listed) = app.call("GET", "/api/v1/files", Some(&bob), None).await;
    assert_eq!(listed["items"], json!([]));
    let (_, listed) = app
        .call(
            "GET",
            &format!("/api/v1/files?owner={}", file["owner"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        listed["items"],
        json!([]),
        "the owner filter does not widen a user's view"
    );
    // Bob cannot hand Alice's file to a task; an admin sees it.
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&bob),
            Some(json!({"agent": "echo", "input": {"doc": {"$file": id}}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("/doc"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["violations"][0]["path"], "/doc");
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&bob),
            Some(json!({"agent": "echo", "input": {"doc": {"$file": 5}}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        "{body}"
    );
    let (status, _) = app.get(&format!("/api/v1/files/{id}")).await;
    assert_eq!(status, StatusCode::OK, "admins see every file");
    let (status, task) = app
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&alice),
            Some(json!({"agent": "echo", "input": {"doc": {"$file": id}}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let (status, _) = app
        .call(
            "GET",
            &format!("/api/v1/tasks/{}/artifacts", task["id"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_urls_are_bound_to_one_file_and_expire() {
    let app = TestApp::spawn_with(|c| c.files.url_ttl_s = 1).await;
    let (_, a) = upload(&app, &app.admin, "a.txt", "file a").await;
    let (_, b) = upload(&app, &app.admin, "b.txt", "file b").await;
    let files = app.engine().files();
    let id_a: switchyard_core::FileId = a["id"].as_str().unwrap().parse().unwrap();
    let url = files.download_url(id_a, switchyard_core::Timestamp::now());
    let r = download(&app, None, &url, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "file a");
    // The same signature for another file, a changed expiry or signature: refused.
    let query = url.split_once('?').unwrap().1;
    let other = format!(
        "/api/v1/files/{}/content?{query}",
        b["id"].as_str().unwrap()
    );
    let later = url.replace("expires=", "expires=9");
    // Change the signature's last hex digit to a different one.
    let last = if url.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &url[..url.len() - 1]);
    for bad in [other, later, tampered] {
        let r = download(&app, None, &bad, None).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad}");
    }
    // Not a way to upload either.
    let r = app
        .client
        .post(app.url(&url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let r = download(&app, None, &url, None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_signature");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // Without a signature, the content needs a credential.
    let r = download(
        &app,
        None,
        &format!("/api/v1/files/{}/content", a["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_url_works_only_while_its_attempt_runs() {
    let app = TestApp::spawn().await;
    let task = app.submit("echo", json!({"x": 1})).await;
    let id = task["id"].as_str().unwrap();
    app.wait_status(id, &["succeeded"]).await;
    let task_id: switchyard_core::TaskId = id.parse().unwrap();
    let url =
        app.engine()
            .files()
            .upload_url(task_id, 1, switchyard_core::Timestamp::now(), 60_000);
    let r = app
        .client
        .post(app.url(&format!("{url}&name=late.txt")))
        .body("late")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "lease_lost");
    let forged = url.replace("attempt=1", "attempt=2");
    let r = app
        .client
        .post(app.url(&format!("{forged}&name=x")))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// The S3 path, against the S3-compatible server `.ci/run` starts (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_on_s3() {
    let Some(s3) = s3_settings() else { return };
    let app = TestApp::spawn_with(|c| s3.apply(c)).await;
    round_trip(&app).await;
    let (_, a) = upload(&app, &app.admin, "a.txt", "s3 bytes").await;
    let (_, b) = upload(&app, &app.admin, "b.txt", "s3 bytes").await;
    assert_eq!(a["sha256"], b["sha256"]);
    for f in [&a, &b] {
        assert_eq!(delete(&app, f).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        objects_on_disk(&app),
        0,
        "nothing went to the local directory"
    );
}

/// The same on PostgreSQL (a fresh schema of TEST_DATABASE_URL): records, quotas and
/// content addressing are the store's, and behave the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_on_postgres() {
    let Some(schema) = PgSchema::create("file test").await else {
        return;
    };
    let app = TestApp::spawn_with(|c| {
        c.database.url = Some(schema.url.clone());
        c.files.quota_bytes = 101 << 20;
    })
    .await;
    round_trip(&app).await;
    let (_, a) = upload(&app, &app.admin, "a.txt", "pg bytes").await;
    let (_, b) = upload(&app, &app.admin, "b.txt", "pg bytes").await;
    assert_eq!(a["sha256"], b["sha256"]);
    assert_eq!(
        objects_on_disk(&app),
        2,
        "the 100 MiB file and one copy of the pair"
    );
    let (status, body) = upload(&app, &app.admin, "more.bin", vec![1u8; 2 << 20]).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded")
    );
    let (_, bob) = app.user(Role::Operator).await;
    let (status, _) = app
        .call(
            "GET",
            &format!("/api/v1/files/{}", a["id"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for f in [&a, &b] {
        assert_eq!(delete(&app, f).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(objects_on_disk(&app), 1);
    app.stop().await;
    schema.remove().await;
}
