//! Photo evidence over the real server, with real JPEG files whose EXIF time and GPS position
//! `exiftool` (Debian's libimage-exiftool-perl, installed by `make test`) writes: a photo taken at
//! the outlet during the visit confirms it (an `unverified` visit becomes verified); one taken
//! 2 km away or a day earlier flags the visit suspect; the same picture given again for another
//! visit (byte-identical or re-encoded) is found as reused; a non-image or oversized upload is a
//! 4xx problem; the visit's rep only adds photos to it, the outlet's look-around lists them in
//! time order, and the files come back as uploaded, with a thumbnail.

use crate::common;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::{TestApp, World, assert_problem};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sqlx::PgPool;

/// A 15-minute stop at `at` (a fix every 30 s, accuracy `accuracy_m`), then a walk away.
pub(crate) fn stop(t0: DateTime<Utc>, at: (f64, f64), accuracy_m: f64) -> Value {
    let m = 1.0 / 111_195.0;
    let fixes: Vec<Value> = (0..=40)
        .map(|i| {
            let scatter = f64::from((i * 7 / 2) % 11) - 5.0;
            let away = if i > 30 { f64::from(i - 30) * 80.0 } else { 0.0 };
            json!({"fix_time": (t0 + Duration::seconds(i64::from(i) * 30)).to_rfc3339(),
                   "lat": at.0 + (away + scatter) * m, "lon": at.1, "accuracy_m": accuracy_m + f64::from(i % 3)})
        })
        .collect();
    json!(fixes)
}

/// A JPEG picture (a pattern of `seed`) at `quality`.
pub(crate) fn picture(seed: u32, quality: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let band = ((x / 40 + y / 30 + seed) % 5) as u8;
        image::Rgb([band * 50, 255 - band * 40, ((x * seed + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality))
        .expect("encode");
    out
}

/// `jpeg` with EXIF `DateTimeOriginal` (UTC, with its offset) and GPS position, as a camera
/// writes them, by exiftool.
pub(crate) fn with_exif(jpeg: &[u8], taken: DateTime<Utc>, at: (f64, f64)) -> Vec<u8> {
    exif_written(jpeg, "jpg", taken, at)
}

/// `bytes` (a `.ext` file) with the EXIF of [`with_exif`].
fn exif_written(bytes: &[u8], ext: &str, taken: DateTime<Utc>, (lat, lon): (f64, f64)) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("photo.{ext}"));
    std::fs::write(&path, bytes).expect("write");
    let out = std::process::Command::new("exiftool")
        .arg("-q")
        .arg("-overwrite_original")
        .arg(format!("-DateTimeOriginal={}", taken.format("%Y:%m:%d %H:%M:%S")))
        .arg("-OffsetTimeOriginal=+00:00")
        .arg(format!("-GPSLatitude={}", lat.abs()))
        .arg(format!("-GPSLatitudeRef={}", if lat < 0.0 { "S" } else { "N" }))
        .arg(format!("-GPSLongitude={}", lon.abs()))
        .arg(format!("-GPSLongitudeRef={}", if lon < 0.0 { "W" } else { "E" }))
        .arg(&path)
        .output()
        .expect("exiftool runs (scripts/test-tools.sh installs it)");
    assert!(out.status.success(), "exiftool: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&path).expect("read back")
}

/// `jpeg` encoded as HEIC (HEVC) by libheif's `heif-enc` (Debian's libheif-examples, installed
/// by `make test`), as an iPhone stores it.
pub(crate) fn heic(jpeg: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, output) = (dir.path().join("in.jpg"), dir.path().join("out.heic"));
    std::fs::write(&input, jpeg).expect("write");
    let out = std::process::Command::new("heif-enc")
        .arg("-q")
        .arg("80")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .expect("heif-enc runs (scripts/test-tools.sh installs it)");
    assert!(out.status.success(), "heif-enc: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&output).expect("read back")
}

/// POSTs `bytes` as the `photo` field of a form (with a misleading file name and type: the
/// server reads the content).
async fn upload(app: &TestApp, path: &str, token: &str, bytes: Vec<u8>) -> common::Res {
    let part = Part::bytes(bytes).file_name("IMG_0001.txt").mime_str("text/plain").expect("mime");
    let form = Form::new().part("photo", part).text("note", "storefront");
    let res = app.request(Method::POST, path, Some(token)).multipart(form).send().await.expect("POST");
    common::read(res).await
}

/// The rep's visits of `day` once derivation is done.
pub(crate) async fn visits(app: &TestApp, pool: &PgPool, token: &str, rep_id: i64, day: NaiveDate) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let dirty: i64 = sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty").fetch_one(pool).await.expect("dirty");
        if dirty == 0 {
            let res = app.get(&format!("/api/v1/reps/{rep_id}/visits?from={day}&to={day}"), Some(token)).await;
            assert_eq!(res.status, 200, "{}", res.describe());
            return res.json["visits"].as_array().expect("visits").clone();
        }
        assert!(std::time::Instant::now() < deadline, "never derived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn photos_confirm_or_flag_visits_and_reused_pictures_are_found(pool: PgPool) {
    let w = World::seed(&pool).await;
    for table in ["outlet_locations SET valid_from = valid_from", "outlet_status_changes SET changed_at = changed_at"] {
        sqlx::query(&format!("UPDATE {table} - interval '30 days'")).execute(&pool).await.expect("history");
    }
    sqlx::query("UPDATE tier_policies SET default_radius_m = 50, min_dwell_s = 300 WHERE org_id = $1 AND tier = 'A'")
        .bind(w.org_a)
        .execute(&pool)
        .await
        .expect("tier A");
    let app = TestApp::spawn(pool.clone()).await;
    // Four days with a visit to O1 each; the first with poor accuracy (so `unverified`).
    let mut days = Vec::new();
    for (n, accuracy) in [(4, 120.0), (3, 8.0), (2, 8.0), (1, 8.0)] {
        let (t0, day) = common::ten_oclock(&pool, w.org_a, n).await;
        let r = app.post("/api/v1/pings", Some(&w.device.token), &stop(t0, common::IN_T1, accuracy)).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        days.push((t0, day));
    }
    let mut visit_of = Vec::new();
    for (_, day) in &days {
        let v = visits(&app, &pool, &w.rep.token, w.rep.id, *day).await;
        assert_eq!(v.len(), 1, "{v:?}");
        visit_of.push(v[0].clone());
    }
    assert_eq!(visit_of[0]["verdict"], "unverified", "{}", visit_of[0]);
    assert!(visit_of[1..].iter().all(|v| v["verdict"] == "verified"), "{visit_of:?}");
    let photos_path = |v: &Value| format!("/api/v1/visits/{}/photos", v["id"]);
    let at_outlet = (common::IN_T1.0 + 0.0002, common::IN_T1.1); // ~22 m

    // 1. At the outlet, five minutes into the visit: it confirms the visit.
    let good = with_exif(&picture(1, 90), days[0].0 + Duration::minutes(5), at_outlet);
    let r = upload(&app, &photos_path(&visit_of[0]), &w.rep.token, good.clone()).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let first = r.json.clone();
    assert_eq!(first["content_type"], "image/jpeg", "sniffed, not taken from the name");
    assert_eq!(first["findings"]["verdict"], "confirms", "{first}");
    assert!(first["findings"]["distance_m"].as_f64().is_some_and(|d| d < 40.0), "{first}");
    assert_eq!(first["findings"]["minutes_from_visit"], 0);
    assert_eq!(
        (first["width"].as_i64(), first["height"].as_i64(), &first["note"]),
        (Some(640), Some(480), &json!("storefront"))
    );
    let taken = DateTime::parse_from_rfc3339(first["taken_at"].as_str().expect("taken_at")).expect("time");
    assert_eq!(taken, days[0].0 + Duration::minutes(5), "EXIF time with its offset");
    let v = visits(&app, &pool, &w.rep.token, w.rep.id, days[0].1).await;
    assert_eq!(v[0]["verdict"], "verified", "the photo shows the rep was there: {}", v[0]);
    assert_eq!(v[0]["evidence"]["photos"]["confirming"], 1, "{}", v[0]);
    assert_eq!(v[0]["evidence"]["photos"]["photo_ids"], json!([first["id"]]));
    // Derived again with the photo, the visit keeps its id: the rep's app can add more to it.
    assert_eq!(v[0]["id"], visit_of[0]["id"], "{}", v[0]);
    let second = with_exif(&picture(7, 90), days[0].0 + Duration::minutes(6), at_outlet);
    let r = upload(&app, &photos_path(&visit_of[0]), &w.rep.token, second).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let v = visits(&app, &pool, &w.rep.token, w.rep.id, days[0].1).await;
    assert_eq!((&v[0]["id"], &v[0]["evidence"]["photos"]["confirming"]), (&visit_of[0]["id"], &json!(2)), "{}", v[0]);

    // 2. Taken 2 km away: the visit is flagged, with the reason in its evidence.
    let far = with_exif(&picture(2, 90), days[1].0 + Duration::minutes(5), (common::IN_T1.0 + 0.018, common::IN_T1.1));
    let r = upload(&app, &photos_path(&visit_of[1]), &w.rep.token, far).await;
    assert_eq!((r.status, r.json["findings"]["verdict"].as_str()), (201, Some("contradicts")), "{}", r.describe());
    assert_eq!(r.json["findings"]["far"], true);
    let v = visits(&app, &pool, &w.rep.token, w.rep.id, days[1].1).await;
    assert_eq!(
        (v[0]["verdict"].as_str(), v[0]["evidence"]["photos"]["far"].as_i64()),
        (Some("suspect"), Some(1)),
        "{}",
        v[0]
    );
    assert!(v[0]["risk_score"].as_f64().is_some_and(|r| r >= 0.5));

    // 3. Taken at the outlet, but a day before the visit.
    let early = with_exif(&picture(3, 90), days[2].0 - Duration::days(1), at_outlet);
    let r = upload(&app, &photos_path(&visit_of[2]), &w.rep.token, early).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(
        (r.json["findings"]["during_visit"].as_bool(), r.json["findings"]["verdict"].as_str()),
        (Some(false), Some("contradicts"))
    );
    let v = visits(&app, &pool, &w.rep.token, w.rep.id, days[2].1).await;
    assert_eq!(
        (v[0]["verdict"].as_str(), v[0]["evidence"]["photos"]["off_time"].as_i64()),
        (Some("suspect"), Some(1)),
        "{}",
        v[0]
    );

    // 4. The first photo again, for another visit: reuse, and the visit is flagged.
    let r = upload(&app, &photos_path(&visit_of[3]), &w.rep.token, good.clone()).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.json["reused_photo_id"], first["id"], "{}", r.describe());
    let v = visits(&app, &pool, &w.rep.token, w.rep.id, days[3].1).await;
    assert_eq!(
        (v[0]["verdict"].as_str(), v[0]["evidence"]["photos"]["reused"].as_i64()),
        (Some("suspect"), Some(1)),
        "{}",
        v[0]
    );
    // Re-encoded smaller (other bytes, same picture): found by its perceptual hash.
    let reencoded = {
        let img =
            image::load_from_memory(&good).expect("decode").resize(320, 240, image::imageops::FilterType::Triangle);
        let mut out = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 60)).expect("encode");
        out
    };
    assert_ne!(reencoded, good);
    let o1_photos = format!("/api/v1/outlets/{}/photos", w.o1);
    let r = upload(&app, &o1_photos, &w.manager.token, reencoded).await;
    assert_eq!((r.status, r.json["reused_photo_id"].clone()), (201, first["id"].clone()), "{}", r.describe());
    // A different picture is not reuse; without EXIF it is unverifiable.
    let r = upload(&app, &o1_photos, &w.manager.token, picture(9, 90)).await;
    assert_eq!(
        (r.json["reused_photo_id"].clone(), r.json["findings"]["verdict"].clone()),
        (Value::Null, json!("unverifiable")),
        "{}",
        r.describe()
    );

    // Bad uploads: problems naming what is wrong.
    let visit_photos = photos_path(&v[0]);
    let r = upload(&app, &visit_photos, &w.rep.token, b"just some text, named .jpg".to_vec()).await;
    assert_problem(&r, 415, &visit_photos);
    let r = upload(&app, &visit_photos, &w.rep.token, vec![0xFF; 3 * 1024 * 1024]).await;
    assert_problem(&r, 413, &visit_photos);
    // A JPEG signature over bytes that are no JPEG stream.
    let mut broken = vec![0xFF, 0xD8, 0xFF, 0xE0];
    broken.extend(b"not a JPEG stream at all ".repeat(40));
    let r = upload(&app, &visit_photos, &w.rep.token, broken).await;
    assert_problem(&r, 422, &visit_photos);
    assert_eq!(r.json["errors"][0]["field"], "photo", "{}", r.describe());
    let no_file = app
        .request(Method::POST, &visit_photos, Some(&w.rep.token))
        .multipart(Form::new().text("note", "no photo"))
        .send()
        .await
        .expect("POST");
    assert_problem(&common::read(no_file).await, 422, &visit_photos);
    let json_body = app.post(&visit_photos, Some(&w.rep.token), &json!({"photo": "x"})).await;
    assert_problem(&json_body, 415, &visit_photos);
    // Only the visit's rep adds photos to it.
    let r = upload(&app, &visit_photos, &w.manager.token, picture(5, 90)).await;
    assert_problem(&r, 403, &visit_photos);
    let r = upload(&app, &visit_photos, &w.peer.token, picture(5, 90)).await;
    assert_problem(&r, 403, &visit_photos);
    let o2_photos = format!("/api/v1/outlets/{}/photos", w.o2);
    assert_problem(&upload(&app, &o2_photos, &w.manager.token, picture(6, 90)).await, 403, &o2_photos);

    // Lists: a visit's photos, the outlet's look-around in the order they were taken.
    let listed = app.get(&visit_photos, Some(&w.manager.token)).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1), "{}", listed.describe());
    let around = app.get(&o1_photos, Some(&w.supervisor.token)).await;
    assert_eq!(around.status, 200, "{}", around.describe());
    let times: Vec<String> = around.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["taken_at"].as_str().or(p["uploaded_at"].as_str()).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(times.len(), 7, "{}", around.describe());
    let instants: Vec<DateTime<Utc>> =
        times.iter().map(|t| DateTime::parse_from_rfc3339(t).expect("time").with_timezone(&Utc)).collect();
    assert!(instants.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(around.json["items"][0]["id"], first["id"], "the oldest picture first");
    let page = app.get(&format!("{o1_photos}?limit=2"), Some(&w.supervisor.token)).await;
    let next = page.json["next"].as_i64().expect("a next page");
    let rest = app.get(&format!("{o1_photos}?limit=10&after={next}"), Some(&w.supervisor.token)).await;
    let paged: Vec<&Value> =
        page.json["items"].as_array().into_iter().chain(rest.json["items"].as_array()).flatten().collect();
    assert_eq!(
        paged.iter().map(|p| p["id"].clone()).collect::<Vec<_>>(),
        around.json["items"].as_array().expect("items").iter().map(|p| p["id"].clone()).collect::<Vec<_>>()
    );

    // The files: the original as uploaded, a small JPEG thumbnail.
    let id = first["id"].as_i64().expect("id");
    let original = app
        .request(Method::GET, &format!("/api/v1/photos/{id}/original"), Some(&w.manager.token))
        .send()
        .await
        .expect("GET");
    assert_eq!(original.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("image/jpeg"));
    assert_eq!(original.bytes().await.expect("body").to_vec(), good);
    let thumb = app
        .request(Method::GET, &format!("/api/v1/photos/{id}/thumbnail"), Some(&w.rep.token))
        .send()
        .await
        .expect("GET");
    let thumb = image::load_from_memory(&thumb.bytes().await.expect("body")).expect("a JPEG");
    assert_eq!((thumb.width(), thumb.height()), (320, 240));
    let rep2_reads = app.get(&format!("/api/v1/photos/{id}"), Some(&w.rep2.token)).await;
    assert_problem(&rep2_reads, 403, &format!("/api/v1/photos/{id}"));

    // The audit export carries the visits' photos (and checklist answers), in its data hash too.
    let list = app
        .post(
            "/api/v1/checklists",
            Some(&w.admin.token),
            &json!({"name": "Audit", "items": [{"key": "display_ok", "label": "Display", "type": "yes_no", "expect": true}]}),
        )
        .await;
    let answers = json!({"checklist_id": list.json["id"], "answers": {"display_ok": false}});
    let r = app.post(&format!("/api/v1/visits/{}/outcomes", v[0]["id"]), Some(&w.rep.token), &answers).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let body = json!({"scope": {"kind": "rep", "id": w.rep.id}, "from": days[0].1, "to": days[3].1, "formats": ["xlsx", "csv"]});
    let started = app.post("/api/v1/exports", Some(&w.manager.token), &body).await;
    assert_eq!(started.status, 202, "{}", started.describe());
    let export_id = started.json["id"].as_i64().expect("id");
    let mut status = String::new();
    for _ in 0..600 {
        status = app.get(&format!("/api/v1/exports/{export_id}"), Some(&w.manager.token)).await.json["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "done" || status == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "done");
    let file = |name: &str| {
        let path = format!("/api/v1/exports/{export_id}/files/{name}");
        let (app, token) = (&app, w.manager.token.clone());
        async move {
            app.request(Method::GET, &path, Some(&token))
                .send()
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("body")
                .to_vec()
        }
    };
    let (xlsx, zip) = (file("audit.xlsx").await, file("audit-csv.zip").await);
    let read = common::read_export(&xlsx, &zip);
    let sheet = read["xlsx"]["Photos"].as_array().expect("a Photos sheet").clone();
    assert_eq!(sheet.len(), 1 + 5, "the five visit photos (not the outlet's own): {sheet:?}");
    let header = sheet[0].as_array().expect("header");
    let col = |name: &str| header.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"));
    let first_row = sheet.iter().find(|r| r[col("photo_id")] == first["id"]).expect("the first photo's row");
    assert_eq!(first_row[col("sha256")], first["sha256"]);
    assert_eq!(first_row[col("verdict")], "confirms");
    let verdicts: Vec<&str> = sheet[1..].iter().filter_map(|r| r[col("verdict")].as_str()).collect();
    assert_eq!(verdicts, ["confirms", "confirms", "contradicts", "contradicts", "contradicts"]);
    let answers_csv = read["csv"]["checklist_answers.csv"].as_array().expect("checklist answers").clone();
    assert_eq!(answers_csv.len(), 2, "{answers_csv:?}");
    assert_eq!(answers_csv[1][11], "display_ok", "the problems column: {answers_csv:?}");
    let verify = |bytes: Vec<u8>| {
        let (app, token) = (&app, w.manager.token.clone());
        async move {
            let res = app
                .request(Method::POST, &format!("/api/v1/exports/verify?export_id={export_id}"), Some(&token))
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .expect("verify");
            res.json::<Value>().await.expect("verification")
        }
    };
    let unchanged = verify(xlsx.clone()).await;
    assert_eq!(
        (unchanged["file_matches"].as_bool(), unchanged["data_changed"].as_bool()),
        (Some(true), Some(false)),
        "{unchanged}"
    );
    // Another photo for a visit of the period is a change of the data behind the export.
    let more = with_exif(&picture(7, 90), days[3].0 + Duration::minutes(2), at_outlet);
    assert_eq!(upload(&app, &photos_path(&v[0]), &w.rep.token, more).await.status, 201);
    let _ = visits(&app, &pool, &w.rep.token, w.rep.id, days[3].1).await;
    let changed = verify(xlsx).await;
    assert_eq!(changed["data_changed"], true, "{changed}");
    assert!(changed["changed_parts"].as_array().is_some_and(|p| p.contains(&json!("photos"))), "{changed}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_heic_photo_is_read_like_a_jpeg(pool: PgPool) {
    let w = World::seed(&pool).await;
    for table in ["outlet_locations SET valid_from = valid_from", "outlet_status_changes SET changed_at = changed_at"] {
        sqlx::query(&format!("UPDATE {table} - interval '30 days'")).execute(&pool).await.expect("history");
    }
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = common::ten_oclock(&pool, w.org_a, 1).await;
    let r = app.post("/api/v1/pings", Some(&w.device.token), &stop(t0, common::IN_T1, 8.0)).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let visit = visits(&app, &pool, &w.rep.token, w.rep.id, day).await[0].clone();
    let at_outlet = (common::IN_T1.0 + 0.0002, common::IN_T1.1);
    let jpeg = picture(21, 95);
    let photo = exif_written(&heic(&jpeg), "heic", t0 + Duration::minutes(4), at_outlet);
    assert_eq!(&photo[4..12], b"ftypheic", "a real HEIC file");

    let path = format!("/api/v1/visits/{}/photos", visit["id"]);
    let r = upload(&app, &path, &w.rep.token, photo.clone()).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let stored = r.json.clone();
    assert_eq!(
        (&stored["content_type"], &stored["width"], &stored["height"]),
        (&json!("image/heic"), &json!(640), &json!(480)),
        "{stored}"
    );
    assert_eq!(stored["findings"]["verdict"], "confirms", "EXIF read from the HEIF container: {stored}");
    let id = stored["id"].as_i64().expect("id");
    let thumb = app
        .request(Method::GET, &format!("/api/v1/photos/{id}/thumbnail"), Some(&w.rep.token))
        .send()
        .await
        .expect("GET");
    assert_eq!(thumb.status(), 200);
    let thumb = image::load_from_memory(&thumb.bytes().await.expect("body")).expect("a JPEG thumbnail");
    assert_eq!((thumb.width(), thumb.height()), (320, 240));
    let original = app
        .request(Method::GET, &format!("/api/v1/photos/{id}/original"), Some(&w.rep.token))
        .send()
        .await
        .expect("GET");
    assert_eq!(original.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("image/heic"));
    assert_eq!(original.bytes().await.expect("body").to_vec(), photo, "the original as uploaded");

    // The same picture as a JPEG, for the outlet: found by its perceptual hash.
    let o1_photos = format!("/api/v1/outlets/{}/photos", w.o1);
    let r = upload(&app, &o1_photos, &w.manager.token, jpeg).await;
    assert_eq!((r.status, &r.json["reused_photo_id"]), (201, &json!(id)), "{}", r.describe());

    // A HEIF header over bytes libheif cannot read: 422 naming the field.
    let mut broken = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    broken.extend(b"no boxes follow ".repeat(20));
    let r = upload(&app, &path, &w.rep.token, broken).await;
    assert_problem(&r, 422, &path);
    assert_eq!(r.json["errors"][0]["field"], "photo", "{}", r.describe());

    // A HEIC declaring a picture of 20,000 x 20,000 px is refused before it is decoded.
    let mut huge = photo.clone();
    let mut patched = 0;
    for at in 0..huge.len().saturating_sub(16) {
        if &huge[at..at + 4] == b"ispe" {
            huge[at + 8..at + 16]
                .copy_from_slice(&[&20_000u32.to_be_bytes()[..], &20_000u32.to_be_bytes()[..]].concat());
            patched += 1;
        }
    }
    assert!(patched > 0, "the HEIC file declares its size");
    let r = upload(&app, &path, &w.rep.token, huge).await;
    assert_problem(&r, 422, &path);
    let reason = r.json["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("20000x20000 px"), "{}", r.describe());
}

/// A PNG of `width` x `height` grey pixels, all zero: a few hundred KB that decode to
/// `width * height` bytes (an image bomb when large). Written by hand so that making it
/// allocates nothing near that.
fn zero_png(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
        out.extend(u32::try_from(data.len()).expect("small chunk").to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; width as usize + 1]; // filter byte 0, then the pixels
    for _ in 0..height {
        std::io::Write::write_all(&mut z, &row).expect("compress");
    }
    let idat = z.finish().expect("compress");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let ihdr = [&width.to_be_bytes()[..], &height.to_be_bytes(), &[8, 0, 0, 0, 0]].concat();
    chunk(&mut png, *b"IHDR", &ihdr);
    chunk(&mut png, *b"IDAT", &idat);
    chunk(&mut png, *b"IEND", &[]);
    png
}

/// Issue 25, item 5: a 16,000 x 16,000 px PNG of a few hundred KB (256 MB decoded) is refused
/// from its header with 422 naming `photo` and its size; a picture within the budget is kept.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_image_bomb_is_refused_from_its_header(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = format!("/api/v1/outlets/{}/photos", w.o1);
    let bomb = zero_png(16_000, 16_000);
    assert!(bomb.len() < 400_000, "{} bytes", bomb.len());
    let r = upload(&app, &path, &w.manager.token, bomb).await;
    assert_problem(&r, 422, &path);
    assert_eq!(r.json["errors"][0]["field"], "photo", "{}", r.describe());
    let reason = r.json["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("16000x16000 px"), "the reason names the size: {}", r.describe());
    // Still serving, and a small PNG is a photo.
    let r = upload(&app, &path, &w.manager.token, zero_png(64, 48)).await;
    assert_eq!(r.status, 201, "{}", r.describe());
}
