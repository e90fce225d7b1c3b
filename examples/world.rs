//! An entity world over handles: `World` owns its manager and its handles
//! side by side, with no lifetime parameter, so `load_level` can build a
//! level and return it by value (with `PoolBox`es in the same struct this
//! fails to compile: E0505/E0515, see `docs/structuring.md`). A few frames
//! run with `get_mut` and `get_disjoint_mut`; entities are despawned with
//! `remove`; a level change resets the manager and loads the next level
//! into the same memory.
//!
//! Run it with `cargo run --release --example world`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use memory_mgr::{Error, Handle, MemoryManager};

/// Entity destructors run so far (on `remove`, `reset` and the manager's drop).
static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Entity {
    name: String,
    hp: i32,
    attack: i32,
}

impl Drop for Entity {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

struct Transform {
    pos: [f32; 2],
    vel: [f32; 2],
}

/// A level: the manager owns every value, the rest is 16-byte handles.
struct World {
    mm: MemoryManager,
    entities: Vec<Handle<Entity>>, // [0] is the player
    transforms: HashMap<Handle<Entity>, Handle<Transform>>, // Handle is Eq + Hash
}

impl World {
    fn spawn(&mut self, name: String, hp: i32, attack: i32, pos: [f32; 2], vel: [f32; 2]) {
        let e = self.mm.insert(Entity { name, hp, attack });
        let t = self.mm.insert(Transform { pos, vel });
        self.entities.push(e);
        self.transforms.insert(e, t);
    }

    /// One frame: every transform moves, the player hits each guard within
    /// 5 units, guards at 0 hp are despawned. Returns (hits, despawned).
    fn frame(&mut self) -> Result<(usize, Vec<Handle<Entity>>), Error> {
        for &t in self.transforms.values() {
            let t = self.mm.get_mut(t)?; // `self.mm` and `self.transforms`: disjoint fields
            t.pos = [t.pos[0] + t.vel[0], t.pos[1] + t.vel[1]];
        }
        let player = self.entities[0];
        let at = self.mm.get(self.transforms[&player])?.pos;
        let (mut hits, mut dead) = (0, Vec::new());
        for &g in &self.entities[1..] {
            let p = self.mm.get(self.transforms[&g])?.pos;
            if (p[0] - at[0]).hypot(p[1] - at[1]) < 5.0 {
                let [player, guard] = self.mm.get_disjoint_mut([player, g])?;
                guard.hp -= player.attack;
                player.hp -= 1;
                hits += 1;
                if guard.hp <= 0 {
                    dead.push(g);
                }
            }
        }
        for &g in &dead {
            self.entities.retain(|&h| h != g);
            let t = self
                .transforms
                .remove(&g)
                .expect("each entity has a transform");
            self.mm.remove(t)?;
            let _gone: Entity = self.mm.remove(g)?; // moved out, dropped here
        }
        Ok((hits, dead))
    }
}

/// Builds a finished level in `mm` and returns it by value.
fn load_level(mm: MemoryManager, guards: usize) -> World {
    let mut world = World {
        mm,
        entities: Vec::new(),
        transforms: HashMap::new(),
    };
    // Room for the whole level up front: no chunk is allocated while it
    // spawns (or later, while it plays).
    world
        .mm
        .reserve_handles::<Entity>(guards + 1)
        .expect("level budget");
    world
        .mm
        .reserve_handles::<Transform>(guards + 1)
        .expect("level budget");
    world.spawn("player".into(), 1000, 20, [0.0, 0.0], [1.0, 0.5]);
    for i in 0..guards {
        let pos = [(i * 7 % 60) as f32, (i * 13 % 30) as f32];
        world.spawn(format!("guard {i}"), 30, 7, pos, [0.0, 0.0]);
    }
    world
}

fn main() -> Result<(), Error> {
    let mm = MemoryManager::builder()
        .name("level")
        .budget(1 << 20)
        .build()?;
    let mut world = load_level(mm, 500);
    let h = size_of::<Handle<Entity>>();
    println!(
        "level 1: {} entities, {h}-byte handles",
        world.entities.len()
    );

    let mut despawned = Vec::new();
    for frame in 1..=4 {
        let (hits, dead) = world.frame()?;
        let player = world.mm.get(world.entities[0])?;
        let (left, name, hp) = (world.entities.len(), &player.name, player.hp);
        println!(
            "  frame {frame}: {hits} hits, {} despawned, {left} entities, {name} at {hp} hp",
            dead.len()
        );
        despawned.extend(dead);
    }
    let gone = despawned[0];
    println!(
        "  a despawned guard's handle: get -> {:?}",
        world.mm.get(gone).err()
    );
    assert_eq!(world.mm.get(gone).err(), Some(Error::Removed));
    let p = world.entities[0];
    let twice = world.mm.get_disjoint_mut([p, p]).err();
    println!("  get_disjoint_mut([player, player]) -> {twice:?}");
    assert_eq!(twice, Some(Error::DuplicateHandle));

    println!("\nend of level 1:\n{}", world.mm.stats());
    let reserved = world.mm.stats().reserved_bytes();
    let (old, dropped) = (world.entities[1], DROPPED.load(Ordering::Relaxed));
    let mut mm = world.mm; // the manager moves on; the old handles stay behind
    mm.reset(); // O(chunks): every value's destructor runs, the chunks are kept
    let ran = DROPPED.load(Ordering::Relaxed) - dropped;
    let (live, kept) = (mm.stats().live(), mm.stats().reserved_bytes());
    println!("\nreset: {ran} entity destructors ran; {live} live, {kept} of {reserved} bytes kept");

    let world = load_level(mm, 400);
    let stale = world.mm.get(old).err();
    println!(
        "level 2: {} entities; a level 1 handle: get -> {stale:?}",
        world.entities.len()
    );
    assert_eq!(stale, Some(Error::FreedByReset));
    let s = world.mm.stats();
    println!(
        "  reserved after loading level 2: {} bytes (no new chunk)",
        s.reserved_bytes()
    );
    assert_eq!(s.reserved_bytes(), reserved);
    println!("\n{s}");
    Ok(())
}
