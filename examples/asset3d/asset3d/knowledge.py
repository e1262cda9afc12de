"""The retrieval agent's document set: short notes on Blender's Python API, bundled with
the pipeline so that retrieval needs nothing but the embeddings API."""

DOCUMENTS = [
    ("mesh-primitives", "bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 0, 0)) adds a cube; "
     "primitive_cylinder_add and primitive_uv_sphere_add take radius and depth."),
    ("modifiers", "obj.modifiers.new(name='Bevel', type='BEVEL') rounds edges; 'SUBSURF' smooths; "
     "'ARRAY' repeats a mesh along an axis."),
    ("materials", "mat = bpy.data.materials.new('Steel'); mat.use_nodes = True; the Principled BSDF "
     "node takes Metallic and Roughness inputs; obj.data.materials.append(mat)."),
    ("lighting", "bpy.data.lights.new('Key', type='AREA') creates a light; three-point lighting uses "
     "a key, a fill and a rim light at about 45, -45 and 180 degrees."),
    ("camera", "bpy.data.cameras.new('Cam'); scene.camera = cam_obj; track the subject with a "
     "'TRACK_TO' constraint."),
    ("render", "scene.render.engine = 'CYCLES' or 'BLENDER_EEVEE'; render.resolution_x/y and "
     "cycles.samples bound memory and time; bpy.ops.render.render(write_still=True)."),
    ("export", "bpy.ops.export_scene.gltf(filepath='asset.glb') writes glTF; "
     "bpy.ops.wm.save_as_mainfile(filepath='asset.blend') saves the scene."),
    ("sculpt", "Use a multires modifier and sculpt brushes for organic detail; keep polygon counts "
     "under a budget for real-time assets."),
]
