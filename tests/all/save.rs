//! Save and load with serde (the `serde` feature): stores and the handles
//! inside values round-trip into a new manager, stale handles stay stale,
//! and bad input is an error that leaves the manager sound.

use memory_mgr::{Error, Handle, MemoryManager};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit {
    hp: u32,
    leader: Option<Handle<Unit>>,
    gear: Vec<Handle<Gear>>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Gear(String);

fn save<T: Serialize + 'static>(mm: &MemoryManager) -> String {
    serde_json::to_string(
        &mm.save_store::<T, _>(serde_json::value::Serializer)
            .unwrap(),
    )
    .unwrap()
}

fn load<T: for<'de> Deserialize<'de> + Send + 'static>(
    mm: &MemoryManager,
    json: &str,
) -> Result<(), serde_json::Error> {
    mm.load_store::<T, _>(&mut serde_json::Deserializer::from_str(json))
}

#[test]
fn stores_and_the_handles_inside_round_trip_into_a_new_manager() {
    let mut old = MemoryManager::new();
    let sword = old.insert(Gear("sword".into()));
    let shield = old.insert(Gear("shield".into()));
    let chief = old.insert(Unit {
        hp: 50,
        leader: None,
        gear: vec![sword],
    });
    let units: Vec<_> = (0..20)
        .map(|i| {
            old.insert(Unit {
                hp: i,
                leader: Some(chief),
                gear: vec![shield, sword],
            })
        })
        .collect();
    // Holes and stale handles: removed before the save.
    let gone = units[3];
    old.remove(gone).unwrap();
    let reused = old.insert(Unit {
        hp: 99,
        leader: None,
        gear: vec![],
    }); // slot of `gone`
    old.remove(units[7]).unwrap();
    let (gear, unit) = (save::<Gear>(&old), save::<Unit>(&old));
    let roots = serde_json::to_string(&(chief, &units, reused)).unwrap();

    let mut new = MemoryManager::new();
    new.insert(1u64); // other stores first: store numbers differ, no matter
    load::<Unit>(&new, &unit).unwrap(); // before the gear it names
    load::<Gear>(&new, &gear).unwrap();
    type Roots = (Handle<Unit>, Vec<Handle<Unit>>, Handle<Unit>);
    let (chief, units, reused) = new
        .load_with(|| serde_json::from_str::<Roots>(&roots))
        .unwrap();
    assert!(new.is_consistent());
    assert_eq!(new.len::<Unit>(), 20);
    assert_eq!(new.get(chief).unwrap().hp, 50);
    assert_eq!(new.get(new.get(chief).unwrap().gear[0]).unwrap().0, "sword");
    for (i, &u) in units.iter().enumerate() {
        match i {
            3 | 7 => assert_eq!(new.get(u).err(), Some(Error::Removed)),
            _ => {
                let v = new.get(u).unwrap();
                assert_eq!((v.hp, v.leader), (i as u32, Some(chief)));
                assert_eq!(new.get(v.gear[0]).unwrap().0, "shield");
            }
        }
    }
    assert_eq!(new.get(reused).unwrap().hp, 99);
    // New values after the load never answer to a stale handle.
    for _ in 0..10 {
        let h = new.insert(Unit {
            hp: 0,
            leader: None,
            gear: vec![],
        });
        assert!(h != units[3] && h != units[7]);
    }
    assert_eq!(new.get(units[7]).err(), Some(Error::Removed));
    // And the old manager's handles are not the new one's.
    assert_eq!(
        new.get(Handle::clone(&sword)).err(),
        Some(Error::ForeignBlock)
    );
    new.reset();
    assert!(new.is_consistent());
}

#[test]
fn a_load_refuses_bad_input_and_leaves_the_manager_sound() {
    let mm = MemoryManager::new();
    // A handle outside a load.
    assert!(serde_json::from_str::<Handle<Gear>>("[7,0,1]").is_err());
    // Out of order, a live slot with an even generation, a generation too
    // large.
    let g = MemoryManager::new();
    for bad in [
        r#"[[1,1,"a"]]"#,
        r#"[[0,2,"a"]]"#,
        r#"[[0,99999999,null]]"#,
        r#"{"x":1}"#,
    ] {
        assert!(load::<Gear>(&g, bad).is_err(), "{bad}");
        assert!(g.is_consistent());
    }
    // Into a store in use.
    mm.insert(Gear("here".into()));
    assert!(load::<Gear>(&mm, r#"[7,0,[[0,1,"a"]]]"#).is_err());
    assert_eq!(mm.len::<Gear>(), 1);
    // The budget refuses the pages: an error, the values loaded so far
    // stay, valid.
    let small = MemoryManager::builder().budget(3000).build().unwrap();
    let many: Vec<String> = (0..500).map(|i| format!(r#"[{i},1,"g{i}"]"#)).collect();
    let json = format!("[7,0,[{}]]", many.join(","));
    assert!(load::<Gear>(&small, &json).is_err());
    assert!(small.is_consistent());
    let got: Vec<_> = small.values::<Gear>().map(|g| g.0.clone()).collect();
    assert!(!got.is_empty() && got.len() < 500, "{}", got.len());
    assert_eq!(got[0], "g0");
}

#[test]
fn an_empty_store_saves_as_an_empty_sequence() {
    let mm = MemoryManager::new();
    let saved = save::<Gear>(&mm);
    assert!(saved.ends_with(",0,[]]"), "{saved}");
    let other = MemoryManager::new();
    load::<Gear>(&other, &saved).unwrap();
    assert!(other.is_empty::<Gear>());
}

/// The third review's findings in save and load, each failing before its
/// fix: stale handles stay stale through a save and a load.
#[test]
fn stale_handles_stay_stale_through_a_save_and_a_load() {
    // A handle from before a reset of the saving manager.
    let mut old = MemoryManager::new();
    let before_reset = old.insert(Gear("gone".into()));
    old.reset();
    let live = old.insert(Gear("live".into()));
    assert_eq!(
        before_reset.to_bits() as u32,
        live.to_bits() as u32,
        "same slot"
    );
    let gear = save::<Gear>(&old);
    let roots = serde_json::to_string(&(before_reset, live)).unwrap();
    let new = MemoryManager::new();
    load::<Gear>(&new, &gear).unwrap();
    let (stale, live) = new
        .load_with(|| serde_json::from_str::<(Handle<Gear>, Handle<Gear>)>(&roots))
        .unwrap();
    assert_eq!(new.get(live).unwrap().0, "live");
    assert!(
        new.get(stale).is_err(),
        "a handle from before the reset stays stale"
    );

    // A handle to a slot trimmed away before the save: the floor is saved.
    let mut old = MemoryManager::new();
    let hs: Vec<_> = (0..40).map(|i| old.insert(Gear(i.to_string()))).collect();
    for &h in &hs {
        old.remove(h).unwrap();
    }
    old.trim();
    old.insert(Gear("after the trim".into()));
    let gear = save::<Gear>(&old);
    let roots = serde_json::to_string(&hs).unwrap();
    let new = MemoryManager::new();
    load::<Gear>(&new, &gear).unwrap();
    let hs = new
        .load_with(|| serde_json::from_str::<Vec<Handle<Gear>>>(&roots))
        .unwrap();
    for i in 0..60 {
        new.insert(Gear(format!("new {i}")));
    }
    assert!(
        hs.iter().all(|&h| new.get(h).is_err()),
        "no stale handle revived"
    );

    // A load into a store trimmed since the last reset is refused: its own
    // stale handles could match the loaded slots.
    let mut used = MemoryManager::new();
    let h = used.insert(Gear("mine".into()));
    used.remove(h).unwrap();
    used.trim();
    assert!(load::<Gear>(&used, &gear).is_err());
    assert!(used.get(h).is_err());

    // Stores saved by two managers do not mix in one.
    let other = MemoryManager::new();
    other.insert(7u32);
    let two = MemoryManager::new();
    load::<Gear>(&two, &gear).unwrap();
    let json = serde_json::to_string(
        &other
            .save_store::<u32, _>(serde_json::value::Serializer)
            .unwrap(),
    )
    .unwrap();
    assert!(load::<u32>(&two, &json).is_err());
}

/// A save whose writer trims the manager meanwhile (code the save calls)
/// ends with what is there, without a panic.
#[test]
fn a_save_survives_a_trim_from_its_writer() {
    use std::io::Write;
    struct Trims<'a>(&'a MemoryManager, Vec<u8>);
    impl Write for Trims<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.trim();
            self.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut mm = MemoryManager::new();
    let hs: Vec<_> = (0..20).map(|i| mm.insert(Gear(i.to_string()))).collect();
    for &h in &hs {
        mm.remove(h).unwrap();
    }
    let mut w = Trims(&mm, Vec::new());
    mm.save_store::<Gear, _>(&mut serde_json::Serializer::new(&mut w))
        .unwrap();
    assert!(mm.is_consistent());
}
