//! The library API: entities, collections, containers, images, tags, search.

#![allow(clippy::result_large_err)]

use super::*;

pub(super) fn version(ctx: &Ctx) -> Reply {
    let cfg = &ctx.shared.config;
    let mut data = serde_json::json!({ "version": cfg.version });
    if let Some(v) = &cfg.api_version {
        data["apiVersion"] = serde_json::Value::String(v.clone());
    }
    Reply::raw_json(200, &serde_json::json!({ "data": data }))
}

pub(super) fn create_entity(ctx: &Ctx) -> Handled {
    let body: Entity = ctx.json()?;
    let e = ctx.shared.db().create_entity(body).map_err(api_error)?;
    Ok(Reply::json(&e))
}

pub(super) fn get_entity(ctx: &Ctx, name: &str) -> Handled {
    let db = ctx.shared.db();
    let e = db
        .entity_by_name(name)
        .ok_or_else(|| Reply::error(404, format!("entity {name} not found")))?;
    Ok(Reply::json(e))
}

pub(super) fn create_collection(ctx: &Ctx) -> Handled {
    let body: Collection = ctx.json()?;
    let c = ctx.shared.db().create_collection(body).map_err(api_error)?;
    Ok(Reply::json(&c))
}

pub(super) fn get_collection(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, format!("collection {r} not found"));
    let (e, c) = r.split_once('/').ok_or_else(not_found)?;
    let db = ctx.shared.db();
    let col = db.find_collection(e, c).ok_or_else(not_found)?;
    Ok(Reply::json(&db.present_collection(col)))
}

pub(super) fn create_container(ctx: &Ctx) -> Handled {
    let body: Container = ctx.json()?;
    let c = ctx.shared.db().create_container(body).map_err(api_error)?;
    Ok(Reply::json(&c))
}

pub(super) fn get_container(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, format!("container {r} not found"));
    let path = Path::parse(r).ok_or_else(not_found)?;
    let db = ctx.shared.db();
    let c = db.find_container(&path).ok_or_else(not_found)?;
    Ok(Reply::json(&db.present_container(c)))
}

pub(super) fn create_image(ctx: &Ctx) -> Handled {
    let body: Image = ctx.json()?;
    let i = ctx.shared.db().create_image(body).map_err(api_error)?;
    Ok(Reply::json(&i))
}

pub(super) fn get_image(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, format!("image {r} not found"));
    let (path, tag) = Path::parse_with_tag(r).ok_or_else(not_found)?;
    let arch = ctx.param("arch");
    let db = ctx.shared.db();
    let image = db
        .find_image(&path, &tag, arch.as_deref())
        .ok_or_else(not_found)?;
    Ok(Reply::json(&db.present_image(image)))
}

pub(super) fn delete_image(ctx: &Ctx, r: &str) -> Handled {
    let arch = ctx
        .param("arch")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Reply::error(400, "arch is required"))?;
    let (path, tag) = Path::parse_with_tag(r)
        .filter(|_| r.contains(':'))
        .ok_or_else(|| Reply::error(400, format!("invalid image reference {r:?}")))?;
    let mut db = ctx.shared.db();
    let id = db
        .find_image(&path, &tag, Some(&arch))
        .map(|i| i.id.clone())
        .ok_or_else(|| Reply::error(404, format!("image {r} not found")))?;
    let image = db.delete_image(&id).expect("image exists");
    Ok(Reply::json(&image))
}

pub(super) fn search(ctx: &Ctx) -> Handled {
    let value = ctx.param("value").unwrap_or_default();
    if value.chars().count() < 3 {
        return Err(Reply::error(
            400,
            "search value must be at least 3 characters",
        ));
    }
    let signed = match ctx.param("signed").as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => return Err(Reply::error(400, format!("invalid signed value {other:?}"))),
    };
    let arch = ctx.param("arch");
    let results = ctx.shared.db().search(&value, arch.as_deref(), signed);
    Ok(Reply::json(&results))
}

pub(super) fn get_tags(ctx: &Ctx, v2: bool, container: &str) -> Handled {
    if v2 && !ctx.shared.api.v2_tags {
        return Err(Reply::error(404, "this server has no v2 tags"));
    }
    let db = ctx.shared.db();
    let c = db
        .containers
        .get(container)
        .ok_or_else(|| Reply::error(404, format!("container {container} not found")))?;
    Ok(if v2 {
        Reply::json(&c.arch_tags.clone().unwrap_or_default())
    } else {
        Reply::json(&c.image_tags.clone().unwrap_or_default())
    })
}

pub(super) fn set_tag(ctx: &Ctx, v2: bool, container: &str) -> Handled {
    let mut db;
    if v2 {
        if !ctx.shared.api.v2_tags {
            return Err(Reply::error(404, "this server has no v2 tags"));
        }
        let body: ArchImageTag = ctx.json()?;
        if body.arch.is_empty() {
            return Err(Reply::error(400, "Arch is required"));
        }
        db = ctx.shared.db();
        db.set_tag(container, Some(&body.arch), &body.tag, &body.image_id)
            .map_err(api_error)?;
    } else {
        let body: ImageTag = ctx.json()?;
        db = ctx.shared.db();
        db.set_tag(container, None, &body.tag, &body.image_id)
            .map_err(api_error)?;
    }
    let c = &db.containers[container];
    Ok(if v2 {
        Reply::json(&c.arch_tags.clone().unwrap_or_default())
    } else {
        Reply::json(&c.image_tags.clone().unwrap_or_default())
    })
}
